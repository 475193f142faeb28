"""Process-wide settings: glibc's allocator thresholds, set by the first fit on large batches."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sknets import _process as _malloc


class _FakeLibc:
    def __init__(self, result=1):
        self.calls, self.result = [], result

    def mallopt(self, option, value):
        self.calls.append((option, value))
        return self.result


# mallopt is set up through ctypes' attributes: a plain function takes them.
def _libc(result=1):
    libc = _FakeLibc(result)
    function = lambda option, value: libc.mallopt(option, value)
    libc_module = type("Libc", (), {})()
    libc_module.mallopt = function
    return libc, libc_module


def test_the_thresholds_are_set_through_mallopt():
    libc, module = _libc()
    assert _malloc.keep_freed_memory(environ={}, libc=module)
    assert libc.calls == [(_malloc.M_MMAP_THRESHOLD, 32 * 2 ** 20),
                          (_malloc.M_TRIM_THRESHOLD, 64 * 2 ** 20)]


@pytest.mark.parametrize("environ", [
    {"MALLOC_MMAP_THRESHOLD_": "131072"},
    {"MALLOC_TRIM_THRESHOLD_": "131072"},
    {"MALLOC_TOP_PAD_": "0"},
    {"MALLOC_MMAP_MAX_": "0"},
    {"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=512:glibc.malloc.trim_threshold=1"},
])
def test_a_user_s_tuning_of_the_allocator_is_left_alone(environ):
    libc, module = _libc()
    assert not _malloc.keep_freed_memory(environ=environ, libc=module)
    assert libc.calls == []


def test_other_tunables_and_other_c_libraries():
    _, module = _libc()
    assert _malloc.keep_freed_memory(environ={"GLIBC_TUNABLES": "glibc.rtld.nns=2"}, libc=module)
    assert not _malloc.keep_freed_memory(environ={}, libc=object())  # no mallopt (musl)
    failing, module = _libc(result=0)
    assert not _malloc.keep_freed_memory(environ={}, libc=module)
    assert failing.calls == [(_malloc.M_MMAP_THRESHOLD, 32 * 2 ** 20)]  # stops at a refusal


def _glibc():
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc(), reason="the thresholds are glibc's; this C library is another")
def test_fits_at_large_batches_stop_faulting_in_fresh_memory():
    # A fresh process, as a user's script: a fit at batch 1,000 allocates a
    # 3 MB batch at every step, and sets the thresholds. The second fit reuses
    # freed memory; glibc alone went on mapping fresh pages (7,000-62,000
    # page faults for 120 steps of 784-100-10 on Fashion-MNIST).
    script = textwrap.dedent("""
        import resource
        import numpy as np
        import sknets
        from sknets import MLPClassifier

        rng = np.random.RandomState(0)
        X = rng.rand(12_000, 784).astype(np.float32)
        y = rng.randint(0, 10, 12_000)
        def fit():
            MLPClassifier((100,), batch_size=1000, max_epochs=2, patience=None,
                          random_state=0).fit(X, y)
        fit()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fit()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        """)
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    faults = int(subprocess.run([sys.executable, "-c", script], env=environ, check=True,
                                capture_output=True, text=True).stdout)
    # 24 steps of 3 MB batches: 18,000 pages if each were fresh. Here glibc
    # alone faulted in 4,700-4,900 pages during that fit; with the
    # thresholds 2-770.
    assert faults < 2000


def test_only_trainings_on_large_batches_set_the_thresholds(monkeypatch):
    from sknets._engine import resources
    from sknets._engine.net import TensorData

    calls = []
    monkeypatch.setattr(resources, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(resources, "_memory_kept", None)
    images = TensorData(torch.zeros(2000, 784))
    assert not resources.keep_memory_for(images, batch_size=100)  # 0.3 MB batches
    assert not resources.keep_memory_for(TensorData(torch.zeros(300, 784)), batch_size=1000)
    assert calls == []
    assert resources.keep_memory_for(images, batch_size=1000)  # 3.1 MB
    assert resources.keep_memory_for(images, batch_size=100)  # set for the process, once
    assert calls == [1]
    # Declined (another C library, the user's tuning): tried once all the same.
    monkeypatch.setattr(resources, "keep_freed_memory", lambda: calls.append(2) or False)
    monkeypatch.setattr(resources, "_memory_kept", None)
    assert not resources.keep_memory_for(images, batch_size=1000)
    assert not resources.keep_memory_for(images, batch_size=1000)
    assert calls == [1, 2]


def test_a_fit_on_large_batches_sets_them(monkeypatch):
    from sknets import MLPClassifier
    from sknets._engine import resources

    calls = []
    monkeypatch.setattr(resources, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(resources, "_memory_kept", None)
    X, y = np.zeros((400, 784), dtype=np.float32), np.arange(400) % 2
    MLPClassifier((8,), batch_size=100, max_epochs=1, random_state=0).fit(X, y)
    assert calls == []
    MLPClassifier((8,), batch_size=400, max_epochs=1, random_state=0).fit(X, y)
    assert calls == [1]
