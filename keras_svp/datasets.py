"""Small real data sets for examples and tests, as NumPy arrays.

Every loader returns `(x_train, y_train), (x_test, y_test)` with float32
images scaled to [0, 1], shaped `(N, height, width, 1)`, and int32 labels.

- `load_digits`: scikit-learn's 8x8 handwritten digits (1,797 images,
  bundled with scikit-learn, so always available offline).
- `load_fashion_mnist`: Fashion-MNIST (70,000 28x28 images) read from IDX
  files, e.g. those of Debian's `dataset-fashion-mnist` package, with
  `keras.datasets.fashion_mnist` as the fallback.
- `load(name, **kwargs)`: either of them by name.
- `read_idx` / `write_idx`: the IDX file format of (Fashion-)MNIST.
"""

import gzip
import os
import struct
import warnings

import numpy as np

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR_ENV = "KERAS_SVP_DATA_DIR"

FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file is corrupt, truncated or not an IDX file at all."""


def _open_maybe_gzip(path):
    with open(path, "rb") as f:
        head = f.read(2)
    if head == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path):
    """Reads an IDX file (the (Fashion-)MNIST format), gzipped or not.

    The header gives the element type and the dimensions; the file must hold
    exactly that much data.

    Args:
        path: path of the file. Gzip compression is detected from the
            content, not the file name.

    Returns:
        A NumPy array with the file's dimensions, in native byte order
        (`uint8` for image and label files).

    Raises:
        IDXFormatError: the magic number is wrong, or the data is truncated
            or longer than the header says.

    Example:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
        >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
        >>> read_idx(path)
        array([3, 1, 4], dtype=uint8)
    """
    path = os.fspath(path)
    try:
        with _open_maybe_gzip(path) as f:
            data = f.read()
    except (OSError, EOFError) as error:
        # gzip raises these for a truncated or corrupt archive.
        raise IDXFormatError(f"Cannot read IDX file {path!r}: {error}") from error
    if len(data) < 4:
        raise IDXFormatError(
            f"{path!r} is not an IDX file: {len(data)} bytes, shorter than the "
            "4-byte magic number."
        )
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise IDXFormatError(
            f"{path!r} is not an IDX file: bad magic number "
            f"0x{data[:4].hex()} (expected 0x0000TTNN with type TT in "
            f"{sorted(hex(c) for c in _IDX_DTYPES)} and NN >= 1 dimensions)."
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXFormatError(
            f"IDX file {path!r} is truncated: its header declares {ndim} "
            f"dimensions ({header_size} header bytes) but the file has "
            f"{len(data)} bytes."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        kind = "truncated" if actual < expected else "longer than its header says"
        raise IDXFormatError(
            f"IDX file {path!r} is {kind}: shape {shape} of {dtype.name} needs "
            f"{expected} data bytes, the file has {actual}."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Writes an array as an IDX file; gzipped if `path` ends with `.gz`.

    Args:
        path: destination file.
        array: array of `uint8`, `int8`, `int16`, `int32`, `float32` or
            `float64` with at least one dimension.

    Returns:
        None. The file holds the header (element type and dimensions) and
        the data in big-endian byte order.

    Raises:
        ValueError: the dtype cannot be stored in IDX, or the array is a
            scalar.

    Example:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "images-idx3-ubyte")
        >>> write_idx(path, np.zeros((2, 3, 3), dtype=np.uint8))
        >>> read_idx(path).shape
        (2, 3, 3)
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store arrays of dtype {array.dtype}.")
    if array.ndim == 0:
        raise ValueError("IDX needs an array with at least one dimension.")
    header = bytes([0, 0, codes[native], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(native.newbyteorder(">")).tobytes()
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def _find_file(directory, stem):
    for name in (stem, stem + ".gz"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def default_fashion_mnist_dir():
    """Where `load_fashion_mnist` looks first when given no `path`.

    Takes no arguments: it reads the environment variable
    `KERAS_SVP_DATA_DIR` at each call.

    Returns:
        `$KERAS_SVP_DATA_DIR/fashion-mnist` if that variable is set,
        otherwise `/usr/share/datasets/fashion-mnist` (where Debian's
        `dataset-fashion-mnist` package installs the files).

    Example:

        >>> import os
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"KERAS_SVP_DATA_DIR": "/data"}):
        ...     default_fashion_mnist_dir()
        '/data/fashion-mnist'
        >>> with mock.patch.dict(os.environ, {"KERAS_SVP_DATA_DIR": ""}):
        ...     default_fashion_mnist_dir()
        '/usr/share/datasets/fashion-mnist'
    """
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        return os.path.join(root, "fashion-mnist")
    return DEBIAN_FASHION_MNIST_DIR


def _scale_images(images, max_value):
    images = np.asarray(images, dtype=np.float32) / np.float32(max_value)
    return images[..., np.newaxis]


def _check_split(images, labels, which, source, num_classes=10):
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IDXFormatError(
            f"Fashion-MNIST {which} images from {source} have shape "
            f"{images.shape}, expected (N, 28, 28)."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise IDXFormatError(
            f"Fashion-MNIST {which} labels from {source} have shape "
            f"{labels.shape}, expected ({len(images)},) to match the images."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise IDXFormatError(
            f"Fashion-MNIST {which} labels from {source} span "
            f"[{labels.min()}, {labels.max()}], expected [0, {num_classes - 1}]."
        )


def _finish_fashion_mnist(x_train, y_train, x_test, y_test, source):
    _check_split(x_train, y_train, "train", source)
    _check_split(x_test, y_test, "test", source)
    return (
        (_scale_images(x_train, 255), y_train.astype(np.int32)),
        (_scale_images(x_test, 255), y_test.astype(np.int32)),
    )


def load_fashion_mnist(path=None):
    """Loads Fashion-MNIST: 60,000 training and 10,000 test images.

    Reads the four IDX files `train-images-idx3-ubyte`,
    `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    `t10k-labels-idx1-ubyte`, each gzipped (`.gz`) or not, from `path`. If
    any of them is missing there, falls back to
    `keras.datasets.fashion_mnist.load_data()` (which downloads the data
    once into `~/.keras/datasets`); if that fails too, raises an error that
    says how to get the data. No other data set is ever substituted.

    Args:
        path: directory of the IDX files. Default:
            `$KERAS_SVP_DATA_DIR/fashion-mnist` if `KERAS_SVP_DATA_DIR` is
            set, else `/usr/share/datasets/fashion-mnist`, where Debian's
            `dataset-fashion-mnist` package installs them.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, 28, 28, 1)` and int32 labels in [0, 9].

    Raises:
        IDXFormatError: a file is present but corrupt or inconsistent.
        FileNotFoundError: the files are missing and Keras could not
            download them.

    Example:

        Tiny stand-in IDX files, to keep the example fast:

        >>> import os, tempfile
        >>> directory = tempfile.mkdtemp()
        >>> for split, n in [("train", 6), ("t10k", 4)]:
        ...     images = np.full((n, 28, 28), 255, dtype=np.uint8)
        ...     labels = np.arange(n, dtype=np.uint8)
        ...     write_idx(f"{directory}/{split}-images-idx3-ubyte.gz", images)
        ...     write_idx(f"{directory}/{split}-labels-idx1-ubyte", labels)
        >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist(directory)
        >>> x_train.shape, x_train.dtype, float(x_train.max())
        ((6, 28, 28, 1), dtype('float32'), 1.0)
        >>> y_test
        array([0, 1, 2, 3], dtype=int32)
    """
    explicit = path is not None
    directory = os.fspath(path) if explicit else default_fashion_mnist_dir()
    found = {
        key: _find_file(directory, stem) for key, stem in FASHION_MNIST_FILES.items()
    }
    missing = [FASHION_MNIST_FILES[key] for key, file in found.items() if file is None]
    if not missing:
        arrays = {key: read_idx(file) for key, file in found.items()}
        return _finish_fashion_mnist(
            arrays["x_train"],
            arrays["y_train"],
            arrays["x_test"],
            arrays["y_test"],
            source=directory,
        )

    if explicit:
        warnings.warn(
            f"Fashion-MNIST IDX files {missing} (or .gz) not found in "
            f"{directory!r}; trying keras.datasets.fashion_mnist instead.",
            stacklevel=2,
        )
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as error:
        raise FileNotFoundError(
            "Fashion-MNIST is not available. The IDX files "
            f"{', '.join(missing)} (or .gz) are missing from {directory!r}, and "
            "keras.datasets.fashion_mnist.load_data() failed "
            f"({type(error).__name__}: {error}). To get the data, either:\n"
            "  - install Debian's package: apt-get install dataset-fashion-mnist "
            f"(it puts the files in {DEBIAN_FASHION_MNIST_DIR}), or\n"
            "  - pass path=... to a directory holding the four IDX files "
            f"{', '.join(FASHION_MNIST_FILES.values())} (gzipped or not), or set "
            f"{DATA_DIR_ENV} so that ${DATA_DIR_ENV}/fashion-mnist holds them."
        ) from error
    return _finish_fashion_mnist(
        np.asarray(x_train),
        np.asarray(y_train),
        np.asarray(x_test),
        np.asarray(y_test),
        source="keras.datasets.fashion_mnist",
    )


def load_digits(test_fraction=0.2, seed=0):
    """Loads scikit-learn's 8x8 handwritten digits with a stratified split.

    1,797 images of the digits 0-9 with 17 gray levels, bundled with
    scikit-learn (no download). The split is stratified by class and
    depends only on `test_fraction` and `seed`.

    Args:
        test_fraction: fraction of the images in the test set, in (0, 1).
        seed: seed of the shuffled split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, 8, 8, 1)` and int32 labels in [0, 9].

    Example:

        >>> (x_train, y_train), (x_test, y_test) = load_digits()
        >>> x_train.shape, x_test.shape
        ((1437, 8, 8, 1), (360, 8, 8, 1))
        >>> x_train.dtype, y_train.dtype, float(x_train.max())
        (dtype('float32'), dtype('int32'), 1.0)
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    try:
        from sklearn import datasets as sk_datasets
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn: pip install scikit-learn"
        ) from error
    digits = sk_datasets.load_digits()
    # Pixel values are integers 0..16.
    images = _scale_images(digits.images, 16)
    labels = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        labels,
        test_size=float(test_fraction),
        random_state=int(seed),
        stratify=labels,
    )
    return (x_train, y_train), (x_test, y_test)


LOADERS = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
}


def load(name, **kwargs):
    """Loads a data set by name.

    Args:
        name: `"digits"` or `"fashion_mnist"` (`"fashion-mnist"` works too).
        **kwargs: passed to the loader (`load_digits` or
            `load_fashion_mnist`).

    Returns:
        `(x_train, y_train), (x_test, y_test)` as the loader returns them.

    Example:

        >>> (x_train, y_train), _ = load("digits", test_fraction=0.5)
        >>> len(x_train)
        898
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(
            f"Unknown data set {name!r}; known data sets: {', '.join(sorted(LOADERS))}."
        )
    return LOADERS[key](**kwargs)
