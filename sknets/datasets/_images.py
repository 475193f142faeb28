"""Load a folder of images sorted into one subfolder per class."""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def _class_folders(root):
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder, extensions):
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
    )


def _load_image(path, size, mode):
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(
            f"Cannot read the image {path} ({exc}). Remove it from the folder or "
            "replace it with a valid PNG or JPEG file."
        ) from exc


def load_image_folder(path, size=(28, 28), grayscale=True, extensions=IMAGE_EXTENSIONS):
    """Load images sorted into one subfolder per class as ``X, y``.

    The layout is the one of many image data sets (and of torchvision's
    ``ImageFolder``)::

        path/
            cat/
                001.png
                002.jpg
            dog/
                001.png

    Subfolders and files are read in sorted order; hidden ones (starting
    with ``.``) and files with other extensions are skipped.

    Parameters
    ----------
    path : str or path-like
        The folder holding one subfolder per class.
    size : tuple of (height, width) or None, default=(28, 28)
        The size every image is resized to (bilinear). If None, images keep
        their size, which must then be the same for all.
    grayscale : bool, default=True
        If True, images are converted to one grey channel; otherwise to RGB,
        with the three channels of a pixel next to each other in ``X``.
    extensions : tuple of str, default=(".png", ".jpg", ".jpeg")
        The file extensions read (case-insensitive).

    Returns
    -------
    X : ndarray of shape (n_images, height * width * channels), float32
        The images, flattened row by row, with pixels scaled to [0, 1].
    y : ndarray of shape (n_images,), str
        The name of each image's class folder.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If no image is found, an image cannot be read, or (with
        ``size=None``) the images differ in size.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from sknets.datasets import load_image_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> for label, shade in [("dark", 20), ("light", 230)]:
    ...     (root / label).mkdir()
    ...     Image.new("L", (32, 32), shade).save(root / label / "0.png")
    >>> X, y = load_image_folder(root, size=(28, 28))
    >>> X.shape, y.tolist()
    ((2, 784), ['dark', 'light'])
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} is not a folder: pass the folder holding one subfolder per class."
        )
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(
            f"size must be (height, width) with positive values or None, got {size!r}."
        )
    extensions = tuple(e.lower() for e in extensions)
    files, labels = [], []
    for folder in _class_folders(root):
        found = _image_files(folder, extensions)
        files += found
        labels += [folder.name] * len(found)
    if not files:
        raise ValueError(
            f"No image found in {root}: expected one subfolder per class holding "
            f"image files with an extension in {extensions}."
        )
    mode = "L" if grayscale else "RGB"
    first = _load_image(files[0], size, mode)
    X = np.empty((len(files), first.size), dtype=np.float32)
    for i, file in enumerate(files):
        pixels = first if i == 0 else _load_image(file, size, mode)
        if pixels.shape != first.shape:
            raise ValueError(
                f"{file} has shape {pixels.shape}, but {files[0]} has {first.shape}: "
                "pass size=(height, width) to resize all images to one size."
            )
        X[i] = pixels.reshape(-1)
    X /= 255
    return X, np.array(labels)
