"""Tests for sknets.datasets: readers, downloads, fetchers, image folders."""

import doctest
import functools
import gzip
import hashlib
import http.server
import inspect
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sknets import datasets
from sknets.datasets import (
    _fetch,
    _images,
    _mnist_like,
    _readers,
    fetch_fashion_mnist,
    fetch_kmnist,
    fetch_kuzushiji49,
    fetch_mnist,
    get_data_home,
    load_image_folder,
)
from sknets.datasets._mnist_like import SPECS
from sknets.datasets._readers import read_idx, read_npz

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- small generated files -------------------------------------------------


def idx_bytes(array):
    """The IDX encoding of a uint8 array of 1 or 3 dimensions."""
    magic = {1: 0x801, 3: 0x803}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def md5_of(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_dataset(folder, name, n_train=30, n_test=10, seed=0):
    """Write small files of data set ``name`` into ``folder``; return their md5."""
    rng = np.random.default_rng(seed)
    spec = SPECS[name]
    n_classes = len(spec["target_names"])
    folder.mkdir(parents=True, exist_ok=True)
    for subset, n in [("train", n_train), ("test", n_test)]:
        images_name, labels_name = spec["files"][subset]
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % n_classes
        for file_name, array in [(images_name, images), (labels_name, labels)]:
            if file_name.endswith(".npz"):
                np.savez_compressed(folder / file_name, array)
            else:
                (folder / file_name).write_bytes(gzip.compress(idx_bytes(array)))
    return {f: md5_of(folder / f) for pair in spec["files"].values() for f in pair}


def write_classmap(path, chars):
    """A class map in the publisher's layout: index,codepoint,char."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("index,codepoint,char\n")
        for i, char in enumerate(chars):
            f.write(f"{i},U+{ord(char):04X},{char}\n")


# --- a local HTTP server ---------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path not in self.server.cut_short:
            return super().do_GET()
        body = Path(self.directory, self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``server.root``, logging requests.

    Paths added to ``server.cut_short`` get half their body, then the
    connection is closed although the Content-Length announced all of it.
    """
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests, httpd.cut_short, httpd.root = [], set(), root
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def mirrored_mnist(server, monkeypatch):
    """Small MNIST files on the server, their md5 in the package's table."""
    md5 = write_dataset(server.root / "mnist", "mnist")
    monkeypatch.setitem(SPECS["mnist"], "md5", md5)
    return server


def cache_content(folder):
    """Every file in ``folder`` (hidden temporary files included)."""
    return sorted(p.name for p in Path(folder).iterdir()) if Path(folder).exists() else []


# --- readers ---------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    content = idx_bytes(images)
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if compress else content)
    np.testing.assert_array_equal(read_idx(path, ndim=3), images)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    packed = gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8)))
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match=f"{path.name}.*gzip stream is damaged"):
        read_idx(path, ndim=3)


def test_read_idx_rejects_truncated_content(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-100])
    with pytest.raises(ValueError, match=f"{path.name}.*truncated.*shape \\(5, 28, 28\\)"):
        read_idx(path, ndim=3)


def test_read_idx_rejects_wrong_magic(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8))))
    with pytest.raises(
        ValueError, match=f"{path.name}.*magic number is 0x00000803, not 0x00000801"
    ):
        read_idx(path, ndim=1)


@pytest.mark.parametrize("reader", [read_idx, read_npz])
@pytest.mark.parametrize(
    "content",
    [b"<html>Not Found</html>", b"", b"\x1f\x8bnot gzip"],
    ids=["html", "empty", "fake-gz"],
)
def test_readers_reject_foreign_files(tmp_path, reader, content):
    path = tmp_path / "t10k-labels-file"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{path.name} is not a valid data file"):
        reader(path, ndim=1)


def test_read_npz_rejects_truncated_archive(tmp_path):
    path = tmp_path / "kmnist-test-imgs.npz"
    np.savez_compressed(path, np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=f"{path.name}.*cannot be read as an .npz"):
        read_npz(path, ndim=3)


@pytest.mark.parametrize(
    "arrays, problem",
    [
        ({"arr_0": np.zeros(5, np.int32)}, "dtype int32"),
        ({"arr_0": np.zeros((5, 2), np.uint8)}, "2 dimensions"),
        ({"images": np.zeros(5, np.uint8)}, "not 'arr_0'"),
    ],
)
def test_read_npz_rejects_unexpected_arrays(tmp_path, arrays, problem):
    path = tmp_path / "k49-test-labels.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=f"{path.name}.*{problem}"):
        read_npz(path, ndim=1)


def test_fetch_rejects_images_and_labels_of_different_lengths(tmp_path):
    write_dataset(tmp_path / "mnist", "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(7, np.uint8))))
    with pytest.raises(
        ValueError, match="10 images but .*t10k-labels-idx1-ubyte.gz holds 7 labels"
    ):
        fetch_mnist(subset="test", data_home=tmp_path, download_if_missing=False)


# --- data home and parameters ----------------------------------------------


def test_get_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("SKNETS_DATA", raising=False)
    assert get_data_home() == Path.home() / "sknets_data"
    monkeypatch.setenv("SKNETS_DATA", str(tmp_path / "from_env"))
    assert get_data_home() == tmp_path / "from_env"
    assert get_data_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert not (tmp_path / "from_env").exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"subset": "validation"}, "subset must be one of"),
        ({"n_retries": -1}, "n_retries must be an integer >= 0"),
        ({"delay": "1s"}, "delay must be a number of seconds"),
    ],
)
def test_fetch_rejects_bad_parameters(tmp_path, params, message):
    with pytest.raises(ValueError, match=message):
        fetch_mnist(data_home=tmp_path, **params)


# --- downloads, against the local server -----------------------------------


def test_download_fills_the_cache_then_reads_it_offline(mirrored_mnist, tmp_path):
    cache = tmp_path / "cache"
    bunch = fetch_mnist(subset="all", data_home=cache, base_url=mirrored_mnist.url, delay=0)

    assert bunch.data.shape == (40, 784) and bunch.images.shape == (40, 28, 28)
    assert cache_content(cache / "mnist") == sorted(SPECS["mnist"]["md5"])
    assert len(mirrored_mnist.requests) == 4

    again = fetch_mnist(subset="all", data_home=cache, base_url=mirrored_mnist.url)
    assert len(mirrored_mnist.requests) == 4
    np.testing.assert_array_equal(again.data, bunch.data)


def test_download_uses_mirror_and_data_home_from_environment(mirrored_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("SKNETS_DATASETS_MIRROR", mirrored_mnist.url + "/")
    monkeypatch.setenv("SKNETS_DATA", str(tmp_path / "env_cache"))
    X, y = fetch_mnist(subset="test", return_X_y=True, delay=0)
    assert X.shape == (10, 784)
    assert sorted(mirrored_mnist.requests) == [
        "/mnist/t10k-images-idx3-ubyte.gz",
        "/mnist/t10k-labels-idx1-ubyte.gz",
    ]
    assert (tmp_path / "env_cache" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_download_with_wrong_md5_leaves_nothing(mirrored_mnist, tmp_path, monkeypatch):
    monkeypatch.setitem(SPECS["mnist"]["md5"], "t10k-images-idx3-ubyte.gz", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="t10k-images-idx3-ubyte.gz has md5 .* expected 0{32}"):
        fetch_mnist(subset="test", data_home=cache, base_url=mirrored_mnist.url, delay=0)
    assert cache_content(cache / "mnist") == []
    assert mirrored_mnist.requests == ["/mnist/t10k-images-idx3-ubyte.gz"]  # not retried


def test_download_cut_short_is_retried_then_fails_cleanly(mirrored_mnist, tmp_path):
    path = "/mnist/t10k-images-idx3-ubyte.gz"
    mirrored_mnist.cut_short.add(path)
    cache = tmp_path / "cache"
    with pytest.raises(
        OSError, match=f"Could not download {mirrored_mnist.url}{path} after 3 attempt.*by hand"
    ):
        fetch_mnist(
            subset="test", data_home=cache, base_url=mirrored_mnist.url, n_retries=2, delay=0
        )
    assert mirrored_mnist.requests == [path] * 3
    assert cache_content(cache / "mnist") == []


def test_download_of_missing_file_is_not_retried(server, tmp_path):
    with pytest.raises(
        OSError, match="Could not download .*/mnist/t10k-images-idx3-ubyte.gz after 1 attempt.*404"
    ):
        fetch_mnist(subset="test", data_home=tmp_path, base_url=server.url, delay=0)
    assert server.requests == ["/mnist/t10k-images-idx3-ubyte.gz"]


def test_missing_files_without_download_make_no_request(mirrored_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("SKNETS_DATASETS_MIRROR", mirrored_mnist.url)
    with pytest.raises(
        FileNotFoundError, match="t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz not found in"
    ):
        fetch_mnist(subset="test", data_home=tmp_path / "cache", download_if_missing=False)
    assert mirrored_mnist.requests == []
    assert not (tmp_path / "cache").exists()


def test_present_files_are_read_without_checksum(tmp_path, monkeypatch):
    # Like the Debian copies of Fashion-MNIST: other bytes, same content.
    write_dataset(tmp_path / "fashion-mnist", "fashion-mnist")
    monkeypatch.setattr(_fetch, "_urlopen", _no_network)
    bunch = fetch_fashion_mnist(subset="train", data_home=tmp_path)
    assert bunch.data.shape == (30, 784)


def _no_network(*args, **kwargs):
    raise AssertionError("the network was used although the files are in the cache")


# --- the fetchers' output --------------------------------------------------


@pytest.fixture
def small_mnist_home(tmp_path):
    write_dataset(tmp_path / "mnist", "mnist")
    return tmp_path


def test_bunch_content(small_mnist_home):
    bunch = fetch_mnist(subset="train", data_home=small_mnist_home)
    assert bunch.data.dtype == np.float32 and bunch.data.shape == (30, 784)
    assert 0 <= bunch.data.min() and bunch.data.max() <= 1
    assert np.shares_memory(bunch.images, bunch.data)
    np.testing.assert_array_equal(bunch.images.reshape(30, -1), bunch.data)
    assert bunch.target.dtype == np.int64
    assert list(bunch.target_names) == list("0123456789")
    assert bunch.feature_names[0] == "pixel_0" and len(bunch.feature_names) == 784
    assert bunch.frame is None
    assert bunch.DESCR.startswith("MNIST handwritten digits\n")


def test_subset_all_is_train_then_test(small_mnist_home):
    train, test, both = (
        fetch_mnist(subset=s, data_home=small_mnist_home) for s in ("train", "test", "all")
    )
    np.testing.assert_array_equal(both.data, np.vstack([train.data, test.data]))
    np.testing.assert_array_equal(both.target, np.concatenate([train.target, test.target]))


def test_as_frame(small_mnist_home):
    bunch = fetch_mnist(subset="test", data_home=small_mnist_home, as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame) and list(bunch.data.columns) == bunch.feature_names
    assert isinstance(bunch.target, pd.Series) and bunch.target.dtype == np.int64
    assert bunch.frame.shape == (10, 785) and bunch.frame.columns[-1] == "target"
    X, y = fetch_mnist(subset="test", data_home=small_mnist_home, as_frame=True, return_X_y=True)
    pd.testing.assert_frame_equal(X, bunch.data)
    pd.testing.assert_series_equal(y, bunch.target)


# --- Kuzushiji -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, chars", [("kmnist", _mnist_like.KMNIST_CHARS), ("k49", _mnist_like.K49_CHARS)]
)
def test_built_in_class_maps_are_the_publishers_files(tmp_path, name, chars):
    # The md5 are those of the publisher's kmnist_classmap.csv and
    # k49_classmap.csv: the built-in characters are the same, in order.
    spec = SPECS[name]
    path = tmp_path / spec["classmap"]
    write_classmap(path, chars)
    assert md5_of(path) == spec["md5"][spec["classmap"]]
    assert len(set(chars)) == len(chars) == {"kmnist": 10, "k49": 49}[name]


def test_fetch_kmnist_downloads_npz_files(server, tmp_path, monkeypatch):
    md5 = write_dataset(server.root / "kmnist", "kmnist", n_train=20, n_test=10)
    monkeypatch.setitem(SPECS["kmnist"], "md5", md5)
    bunch = fetch_kmnist(subset="train", data_home=tmp_path, base_url=server.url, delay=0)
    assert bunch.data.shape == (20, 784) and bunch.data.dtype == np.float32
    assert list(bunch.target_names) == list("おきすつなはまやれを")
    assert sorted(server.requests) == [
        "/kmnist/kmnist-train-imgs.npz",
        "/kmnist/kmnist-train-labels.npz",
    ]


def test_fetch_kuzushiji49_reads_npz_and_class_names(tmp_path):
    write_dataset(tmp_path / "k49", "k49", n_train=98, n_test=49)
    bunch = fetch_kuzushiji49(subset="test", data_home=tmp_path, download_if_missing=False)
    assert bunch.data.shape == (49, 784)
    assert np.bincount(bunch.target).tolist() == [1] * 49
    assert bunch.target_names[0] == "あ" and list(bunch.target_names[-5:]) == list("ゐゑをんゝ")
    assert "IMBALANCED" in bunch.DESCR
    assert "balanced_accuracy_score" in fetch_kuzushiji49.__doc__


def test_class_map_in_cache_is_read(tmp_path):
    write_dataset(tmp_path / "kmnist", "kmnist")
    write_classmap(tmp_path / "kmnist" / "kmnist_classmap.csv", "abcdefghij")
    bunch = fetch_kmnist(subset="test", data_home=tmp_path)
    assert list(bunch.target_names) == list("abcdefghij")


def test_class_map_of_another_data_set_is_rejected(tmp_path):
    write_dataset(tmp_path / "kmnist", "kmnist")
    write_classmap(tmp_path / "kmnist" / "kmnist_classmap.csv", _mnist_like.K49_CHARS)
    with pytest.raises(ValueError, match="kmnist_classmap.csv maps 49 classes, expected 10"):
        fetch_kmnist(subset="test", data_home=tmp_path)


def test_labels_beyond_the_classes_are_rejected(tmp_path):
    write_dataset(tmp_path / "kmnist", "kmnist")
    labels = tmp_path / "kmnist" / "kmnist-test-labels.npz"
    np.savez_compressed(labels, np.full(10, 48, np.uint8))  # a K49 label
    with pytest.raises(
        ValueError, match=f"{labels.name} holds the label 48, but the data set has 10"
    ):
        fetch_kmnist(subset="test", data_home=tmp_path)


# --- the real files ---------------------------------------------------------


@pytest.fixture(scope="module")
def real_bunches(real_data_home):
    def load(fetcher, subset):
        return fetcher(subset=subset, data_home=real_data_home, download_if_missing=False)

    return {
        (fetcher.__name__, subset): load(fetcher, subset)
        for fetcher in (fetch_mnist, fetch_fashion_mnist)
        for subset in ("train", "test")
    }


@pytest.mark.parametrize(
    "fetcher, subset, counts",
    [
        ("fetch_mnist", "train", MNIST_TRAIN_COUNTS),
        ("fetch_mnist", "test", MNIST_TEST_COUNTS),
        ("fetch_fashion_mnist", "train", [6000] * 10),
        ("fetch_fashion_mnist", "test", [1000] * 10),
    ],
)
def test_real_files(real_bunches, fetcher, subset, counts):
    bunch = real_bunches[fetcher, subset]
    assert bunch.data.shape == (sum(counts), 784) and bunch.data.dtype == np.float32
    assert bunch.data.min() == 0 and bunch.data.max() == 1
    assert np.bincount(bunch.target).tolist() == counts


def test_real_fashion_names(real_bunches):
    names = real_bunches["fetch_fashion_mnist", "test"].target_names
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot"


def test_real_files_use_no_network(real_data_home, monkeypatch):
    monkeypatch.setattr(_fetch, "_urlopen", _no_network)
    monkeypatch.setenv("SKNETS_DATASETS_MIRROR", "http://127.0.0.1:9/unused")
    assert fetch_fashion_mnist(subset="test", data_home=real_data_home).data.shape == (10_000, 784)
    assert fetch_mnist(subset="test", data_home=real_data_home).data.shape == (10_000, 784)


# --- image folders ------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    for label, shades in {"circle": [0, 255, 128], "square": [64, 192]}.items():
        (root / label).mkdir(parents=True)
        for i, shade in enumerate(shades):
            Image.new("RGB", (40, 30), (shade, shade, shade)).save(root / label / f"{i}.png")
    Image.new("L", (40, 30), 255).save(root / "square" / "2.JPEG")
    (root / "square" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    Image.new("L", (40, 30), 255).save(root / ".hidden" / "0.png")
    return root


def test_load_image_folder(image_folder):
    X, y = load_image_folder(image_folder, size=(28, 28))
    assert X.shape == (6, 784) and X.dtype == np.float32
    assert list(y) == ["circle"] * 3 + ["square"] * 3
    np.testing.assert_allclose(X[:3].mean(axis=1), [0, 1, 128 / 255], atol=1e-6)
    np.testing.assert_allclose(X[5], 1, atol=0.01)  # JPEG, close to white


def test_load_image_folder_rgb_and_original_size(image_folder):
    X, _ = load_image_folder(image_folder, size=None, grayscale=False)
    assert X.shape == (6, 30 * 40 * 3)
    X, _ = load_image_folder(image_folder, size=(10, 20), extensions=(".png",))
    assert X.shape == (5, 200)


def test_load_image_folder_needs_one_size_without_resizing(image_folder):
    Image.new("L", (10, 10)).save(image_folder / "circle" / "small.png")
    with pytest.raises(ValueError, match="small.png has shape \\(10, 10\\).*pass size="):
        load_image_folder(image_folder, size=None)


def test_load_image_folder_rejects_unreadable_image(image_folder):
    (image_folder / "circle" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="Cannot read the image .*broken.png"):
        load_image_folder(image_folder)


@pytest.mark.parametrize("layout", ["empty", "no_class_folders", "empty_class_folder"])
def test_load_image_folder_rejects_folder_without_images(tmp_path, layout):
    if layout == "no_class_folders":
        Image.new("L", (28, 28)).save(tmp_path / "0.png")
    elif layout == "empty_class_folder":
        (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="No image found in .*one subfolder per class"):
        load_image_folder(tmp_path)


def test_load_image_folder_rejects_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_image_folder(tmp_path / "nowhere")


# --- documentation ----------------------------------------------------------


@pytest.mark.parametrize("module", [_fetch, _images, _mnist_like, _readers])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", [n for n in datasets.__all__ if n != "DATASETS"])
def test_public_functions_have_numpydoc_sections(name):
    doc = getattr(datasets, name).__doc__
    for section in ("Parameters\n    ----------", "Returns\n    -------", "Examples\n    --------"):
        assert section in doc, f"{name} lacks {section.splitlines()[0]}"


def test_fetchers_share_one_signature():
    # The four public signatures are written out, as in scikit-learn, for
    # readers and tools; this keeps them from drifting apart.
    signatures = {
        str(inspect.signature(f))
        for f in (fetch_mnist, fetch_fashion_mnist, fetch_kmnist, fetch_kuzushiji49)
    }
    assert len(signatures) == 1


def test_registry_names_each_data_set_once():
    # One name per data set: the registry's key, the spec's key and the
    # cache subfolder, so the command line, the studies and the files agree.
    assert datasets.DATASETS == {"mnist": fetch_mnist, "fashion-mnist": fetch_fashion_mnist,
                                 "kmnist": fetch_kmnist, "k49": fetch_kuzushiji49}
    assert list(SPECS) == list(datasets.DATASETS)
    assert all(spec["folder"] == name for name, spec in SPECS.items())


def test_fetcher_docstrings_hold_the_shared_parameters():
    for fetch in datasets.DATASETS.values():
        assert "{shared}" not in fetch.__doc__
        assert "download_if_missing : bool, default=True" in fetch.__doc__
        assert "%(" not in fetch.__doc__
