"""Image classification data sets for examples and tests.

Every loader returns `(x_train, y_train), (x_test, y_test)`: float32 NHWC
images scaled to [0, 1] and int32 labels. `load(name, format="tf.data")`
returns batched `tf.data.Dataset`s of the same data instead.

- `load_digits`: scikit-learn's 8x8 handwritten digits (1,797 images,
  bundled with scikit-learn, so always available offline).
- `load_mnist`, `load_fashion_mnist`, `load_cifar10`, `load_cifar100`,
  `load_imagenette`: each from a local directory first (IDX files or a
  `.npz` file, for machines without internet), then from
  `keras.datasets` (which downloads once) or `tensorflow-datasets`
  (`source="tfds"`; Imagenette is only there). A data set that cannot be
  found raises `DatasetNotFoundError`, which says how to get it; no other
  data set is ever substituted.
- `load(name, format=..., **kwargs)`: any of them by name, as arrays or
  as batched `tf.data` pipelines (`to_tf_dataset`).
- `read_idx` / `write_idx`: the IDX file format of (Fashion-)MNIST.

Local files live in `$KERAS_SVP_DATA_DIR/<directory>` (the directory of
each data set is in `SPECS`; Fashion-MNIST defaults to Debian's
`/usr/share/datasets/fashion-mnist` when the variable is unset) or in the
`path` given to the loader. A `.npz` file holds the arrays `x_train`,
`y_train`, `x_test`, `y_test`, like the files `keras.datasets` caches.
"""

import dataclasses
import gzip
import os
import struct
import warnings

import numpy as np

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR_ENV = "KERAS_SVP_DATA_DIR"

IDX_FILES = {
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


class DatasetNotFoundError(FileNotFoundError):
    """A data set is neither on disk nor downloadable; the message says how
    to get it."""


@dataclasses.dataclass(frozen=True)
class _DatasetSpec:
    """Where one data set comes from and what its arrays look like.

    Attributes:
        name: the name `load` takes, e.g. `"cifar10"`.
        title: the name people write, for messages.
        directory: its folder under `$KERAS_SVP_DATA_DIR`.
        image_shape: `(height, width, channels)`, or `None` when images are
            resized on loading (Imagenette).
        num_classes: number of classes.
        keras_name: module of `keras.datasets` that downloads it, if any.
        tfds_name: its `tensorflow-datasets` name.
        tfds_test_split: the `tfds` split used as the test set.
        idx: whether the directory may hold (Fashion-)MNIST IDX files.
    """

    name: str
    title: str
    directory: str
    image_shape: tuple
    num_classes: int
    keras_name: str
    tfds_name: str
    tfds_test_split: str = "test"
    idx: bool = False

    @property
    def npz_name(self):
        return f"{self.name}.npz"


SPECS = {
    spec.name: spec
    for spec in (
        _DatasetSpec(
            "mnist", "MNIST", "mnist", (28, 28, 1), 10, "mnist", "mnist", idx=True
        ),
        _DatasetSpec(
            "fashion_mnist",
            "Fashion-MNIST",
            "fashion-mnist",
            (28, 28, 1),
            10,
            "fashion_mnist",
            "fashion_mnist",
            idx=True,
        ),
        _DatasetSpec(
            "cifar10", "CIFAR-10", "cifar10", (32, 32, 3), 10, "cifar10", "cifar10"
        ),
        _DatasetSpec(
            "cifar100",
            "CIFAR-100",
            "cifar100",
            (32, 32, 3),
            100,
            "cifar100",
            "cifar100",
        ),
        _DatasetSpec(
            "imagenette",
            "Imagenette",
            "imagenette",
            None,
            10,
            None,
            "imagenette/160px",
            tfds_test_split="validation",
        ),
    )
}
SOURCES = ("auto", "local", "keras", "tfds")


def default_data_dir(name):
    """Where the loader of data set `name` looks first when given no `path`.

    `$KERAS_SVP_DATA_DIR/<directory>` if that variable is set (the
    directory of each data set is `SPECS[name].directory`); otherwise
    `~/.keras-svp/datasets/<directory>`, except for Fashion-MNIST, which
    defaults to `/usr/share/datasets/fashion-mnist` (Debian's
    `dataset-fashion-mnist` package).

    Args:
        name: a data set's name, as `load_dataset` takes it.

    Returns:
        The directory path, a string (it need not exist).

    Example:

        >>> os.path.basename(default_data_dir("cifar10"))
        'cifar10'
    """
    spec = _spec(name)
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        return os.path.join(root, spec.directory)
    if spec.name == "fashion_mnist":
        return DEBIAN_FASHION_MNIST_DIR
    return os.path.join(
        os.path.expanduser("~"), ".keras-svp", "datasets", spec.directory
    )


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
    return default_data_dir("fashion_mnist")


def _spec(name):
    key = str(name).strip().lower().replace("-", "_")
    if key not in SPECS:
        known = ", ".join(sorted([*SPECS, "digits"]))
        raise ValueError(f"Unknown data set {name!r}; known data sets: {known}.")
    return SPECS[key]


def _scale_images(images, max_value):
    images = np.asarray(images, dtype=np.float32) / np.float32(max_value)
    return images[..., np.newaxis]


def _check_split(spec, images, labels, which, source):
    expected = spec.image_shape
    if expected is None:
        ok = images.ndim == 4
        expected_text = "(N, height, width, channels)"
    else:
        ok = images.shape[1:] == expected
        expected_text = str((None, *expected)).replace("None", "N")
    if not ok:
        raise IDXFormatError(
            f"{spec.title} {which} images from {source} have shape "
            f"{images.shape}, expected {expected_text}."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise IDXFormatError(
            f"{spec.title} {which} labels from {source} have shape "
            f"{labels.shape}, expected ({len(images)},) to match the images."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise IDXFormatError(
            f"{spec.title} {which} labels from {source} span "
            f"[{labels.min()}, {labels.max()}], expected "
            f"[0, {spec.num_classes - 1}]."
        )


def _finish(spec, x_train, y_train, x_test, y_test, source):
    """Checks raw uint8-range arrays and returns them scaled, NHWC, int32."""
    splits = []
    for which, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 3:  # grayscale without a channel axis
            x = x[..., np.newaxis]
        if y.ndim == 2 and y.shape[1] == 1:  # keras' CIFAR labels are (N, 1)
            y = y[:, 0]
        _check_split(spec, x, y, which, source)
        x = np.asarray(x, dtype=np.float32) / np.float32(255)
        splits.append((x, y.astype(np.int32)))
    return tuple(splits)


def _load_npz(path):
    with np.load(path) as data:
        missing = [
            k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data
        ]
        if missing:
            raise IDXFormatError(
                f"{path!r} lacks the arrays {missing}; a data set .npz file "
                "holds x_train, y_train, x_test and y_test."
            )
        return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def _load_local(spec, path):
    """The data set from `path` (a directory or an .npz file).

    Returns the four raw arrays, or `(None, reason)` when it is not there.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return _load_npz(path), None
    npz = os.path.join(path, spec.npz_name)
    if spec.idx:
        found = {key: _find_file(path, stem) for key, stem in IDX_FILES.items()}
        missing = [IDX_FILES[key] for key, file in found.items() if file is None]
        if not missing:
            arrays = [read_idx(found[key]) for key in IDX_FILES]
            return arrays, None
        if os.path.isfile(npz):
            return _load_npz(npz), None
        return None, (
            f"the IDX files {', '.join(missing)} (or .gz) and "
            f"{spec.npz_name} are missing from {path!r}"
        )
    if os.path.isfile(npz):
        return _load_npz(npz), None
    return None, f"{spec.npz_name} is missing from {path!r}"


def _load_keras(spec, **options):
    import keras

    module = getattr(keras.datasets, spec.keras_name)
    (x_train, y_train), (x_test, y_test) = module.load_data(**options)
    return x_train, y_train, x_test, y_test


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "Loading through tensorflow-datasets needs it installed: "
            "pip install tensorflow-datasets"
        ) from error
    return tfds


def _load_tfds(spec, data_dir=None, download=True, image_size=None):
    """Both splits through `tfds.load`, as uint8-range NumPy arrays."""
    tfds = _import_tfds()
    import tensorflow as tf

    splits = tfds.load(
        spec.tfds_name,
        split=["train", spec.tfds_test_split],
        as_supervised=True,
        data_dir=data_dir,
        download=download,
    )
    arrays = []
    for split in splits:
        if image_size is not None:
            size = (int(image_size[0]), int(image_size[1]))
            split = split.map(lambda x, y, size=size: (tf.image.resize(x, size), y))
        images, labels = [], []
        for x, y in tfds.as_numpy(split.batch(1024)):
            images.append(np.asarray(x, dtype=np.float32))
            labels.append(np.asarray(y))
        arrays += [np.concatenate(images), np.concatenate(labels)]
    return arrays


def _not_found(spec, reasons, error):
    where = default_data_dir(spec.name)
    how = [
        f"put the data in a directory and pass path=..., or set {DATA_DIR_ENV} "
        f"so that ${DATA_DIR_ENV}/{spec.directory} holds it (now: {where!r}); "
        f"the directory holds {spec.npz_name} with the arrays x_train, y_train, "
        "x_test, y_test"
        + (
            f", or the four IDX files {', '.join(IDX_FILES.values())} (gzipped or not)"
            if spec.idx
            else ""
        ),
    ]
    if spec.name == "fashion_mnist":
        how.append(
            "install Debian's package: apt-get install dataset-fashion-mnist "
            f"(it puts the files in {DEBIAN_FASHION_MNIST_DIR})"
        )
    if spec.keras_name:
        how.append(
            f"on a machine with internet, keras.datasets.{spec.keras_name}"
            ".load_data() downloads it (source='keras', the default)"
        )
    how.append(
        f"pip install tensorflow-datasets and load with source='tfds' "
        f"(tfds name {spec.tfds_name!r}; data_dir=... for prepared data)"
    )
    cause = f" ({type(error).__name__}: {error})" if error is not None else ""
    return DatasetNotFoundError(
        f"{spec.title} is not available: {'; '.join(reasons)}{cause}. "
        "To get it, either:\n" + "\n".join(f"  - {line}" for line in how)
    )


def load_dataset(
    name, path=None, source="auto", data_dir=None, image_size=None, **keras_options
):
    """Loads a data set of `SPECS` from disk, `keras.datasets` or `tfds`.

    Args:
        name: a key of `SPECS`: `"mnist"`, `"fashion_mnist"`, `"cifar10"`,
            `"cifar100"` or `"imagenette"` (dashes work too).
        path: a directory holding the data (IDX files or `<name>.npz`) or an
            `.npz` file. Default: `default_data_dir(name)`.
        source: `"auto"` (the local files, then `keras.datasets`, or `tfds`
            for Imagenette), `"local"`, `"keras"` or `"tfds"`.
        data_dir: `tfds` data directory (source `"tfds"`).
        image_size: `(height, width)` to resize to (needed by Imagenette,
            whose images vary in size; `tfds` source only).
        **keras_options: passed to `keras.datasets.<name>.load_data`, e.g.
            `label_mode="coarse"` for CIFAR-100.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 NHWC images in
        [0, 1] and int32 labels.

    Raises:
        DatasetNotFoundError: the data set is nowhere to be found; the
            message says how to get it.
        IDXFormatError: a local file is present but corrupt or inconsistent.

    Example:

        A tiny stand-in `.npz` file:

        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "cifar10.npz")
        >>> x = np.full((4, 32, 32, 3), 255, dtype=np.uint8)
        >>> y = np.arange(4).reshape(4, 1)
        >>> np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
        >>> (x_train, y_train), _ = load_dataset("cifar10", path=path)
        >>> x_train.shape, float(x_train.max()), y_train
        ((4, 32, 32, 3), 1.0, array([0, 1, 2, 3], dtype=int32))
    """
    spec = _spec(name)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
    explicit = path is not None
    directory = os.fspath(path) if explicit else default_data_dir(spec.name)
    reasons = []
    if source in ("auto", "local"):
        arrays, reason = _load_local(spec, directory)
        if arrays is not None:
            return _finish(spec, *arrays, source=directory)
        reasons.append(reason)
        if source == "local":
            raise _not_found(spec, reasons, None)
    if source == "keras" or (source == "auto" and spec.keras_name):
        if not spec.keras_name:
            raise ValueError(f"keras.datasets has no {spec.title}; use source='tfds'.")
        if explicit and source == "auto":
            warnings.warn(
                f"{spec.title} files not found ({reasons[0]}); trying "
                f"keras.datasets.{spec.keras_name} instead.",
                stacklevel=3,
            )
        try:
            arrays = _load_keras(spec, **keras_options)
        except Exception as error:
            reasons.append(f"keras.datasets.{spec.keras_name}.load_data() failed")
            raise _not_found(spec, reasons, error) from error
        return _finish(spec, *arrays, source=f"keras.datasets.{spec.keras_name}")
    if keras_options:
        raise TypeError(f"Options {sorted(keras_options)} are for keras.datasets only.")
    try:
        arrays = _load_tfds(spec, data_dir=data_dir, image_size=image_size)
    except ImportError:
        raise
    except Exception as error:
        reasons.append(f"tfds.load({spec.tfds_name!r}) failed")
        raise _not_found(spec, reasons, error) from error
    return _finish(spec, *arrays, source=f"tfds {spec.tfds_name}")


def load_mnist(path=None, source="auto", **kwargs):
    """Loads MNIST: 60,000 training and 10,000 test 28x28 digits.

    Local files: `$KERAS_SVP_DATA_DIR/mnist` (or `path`) holding the four
    IDX files or `mnist.npz` (the file `keras.datasets.mnist` caches). See
    `load_dataset` for `source` and the other arguments.

    Args:
        path: a directory holding the data, or the `.npz` file itself.
            Default: `default_data_dir("mnist")`.
        source: `"auto"`, `"local"`, `"keras"` or `"tfds"`, as in
            `load_dataset`.
        **kwargs: passed on to `load_dataset`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, 28, 28, 1)` and int32 labels in [0, 9].

    Example:

        A tiny stand-in `mnist.npz` file:

        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "mnist.npz")
        >>> x = np.zeros((4, 28, 28), dtype=np.uint8)
        >>> y = np.arange(4)
        >>> np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
        >>> (x_train, y_train), _ = load_mnist(path=path)
        >>> x_train.shape[1:], y_train.tolist()
        ((28, 28, 1), [0, 1, 2, 3])
    """
    return load_dataset("mnist", path=path, source=source, **kwargs)


def load_fashion_mnist(path=None, source="auto", **kwargs):
    """Loads Fashion-MNIST: 60,000 training and 10,000 test images.

    Reads the four IDX files `train-images-idx3-ubyte`,
    `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    `t10k-labels-idx1-ubyte`, each gzipped (`.gz`) or not (or a
    `fashion_mnist.npz`), from `path`. If they are missing there, falls
    back to `keras.datasets.fashion_mnist.load_data()` (which downloads the
    data once into `~/.keras/datasets`); if that fails too, raises an error
    that says how to get the data. No other data set is ever substituted.

    Args:
        path: directory of the IDX files. Default:
            `$KERAS_SVP_DATA_DIR/fashion-mnist` if `KERAS_SVP_DATA_DIR` is
            set, else `/usr/share/datasets/fashion-mnist`, where Debian's
            `dataset-fashion-mnist` package installs them.
        source: see `load_dataset`.
        **kwargs: see `load_dataset`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, 28, 28, 1)` and int32 labels in [0, 9].

    Raises:
        IDXFormatError: a file is present but corrupt or inconsistent.
        DatasetNotFoundError: (a `FileNotFoundError`) the files are missing
            and Keras could not download them.

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
    return load_dataset("fashion_mnist", path=path, source=source, **kwargs)


def load_cifar10(path=None, source="auto", **kwargs):
    """Loads CIFAR-10: 50,000 training and 10,000 test 32x32 color images.

    Local file: `cifar10.npz` in `$KERAS_SVP_DATA_DIR/cifar10` (or `path`).
    See `load_dataset` for `source` and the other arguments.

    Args:
        path: a directory holding the data, or the `.npz` file itself.
            Default: `default_data_dir("cifar10")`.
        source: `"auto"`, `"local"`, `"keras"` or `"tfds"`, as in
            `load_dataset`.
        **kwargs: passed on to `load_dataset`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, 32, 32, 3)` and int32 labels in [0, 9].

    Example:

        A tiny stand-in `cifar10.npz` file:

        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "cifar10.npz")
        >>> x = np.zeros((4, 32, 32, 3), dtype=np.uint8)
        >>> y = np.arange(4).reshape(4, 1)
        >>> np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
        >>> (x_train, y_train), _ = load_cifar10(path=path)
        >>> x_train.shape[1:], y_train.tolist()
        ((32, 32, 3), [0, 1, 2, 3])
    """
    return load_dataset("cifar10", path=path, source=source, **kwargs)


def load_cifar100(path=None, source="auto", **kwargs):
    """Loads CIFAR-100 (fine labels): 50,000 + 10,000 32x32 color images.

    Local file: `cifar100.npz` in `$KERAS_SVP_DATA_DIR/cifar100` (or
    `path`). See `load_dataset` for `source` and the other arguments.

    Args:
        path: a directory holding the data, or the `.npz` file itself.
            Default: `default_data_dir("cifar100")`.
        source: `"auto"`, `"local"`, `"keras"` or `"tfds"`, as in
            `load_dataset`.
        **kwargs: passed on to `load_dataset`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, 32, 32, 3)` and int32 labels in [0, 99].

    Example:

        A tiny stand-in `cifar100.npz` file:

        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "cifar100.npz")
        >>> x = np.zeros((4, 32, 32, 3), dtype=np.uint8)
        >>> y = np.arange(4).reshape(4, 1)
        >>> np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
        >>> (x_train, y_train), _ = load_cifar100(path=path)
        >>> x_train.shape[1:], y_train.tolist()
        ((32, 32, 3), [0, 1, 2, 3])
    """
    return load_dataset("cifar100", path=path, source=source, **kwargs)


def load_imagenette(path=None, source="auto", image_size=(64, 64), **kwargs):
    """Loads Imagenette (10 ImageNet classes) through `tensorflow-datasets`.

    From `tfds` (`imagenette/160px`, validation split as the test set), with
    every image resized to `image_size`; or from a local `imagenette.npz`
    of already resized uint8 images in `$KERAS_SVP_DATA_DIR/imagenette` (or
    `path`). See `load_dataset` for the other arguments.

    Args:
        path: a directory holding the data, or the `.npz` file itself.
            Default: `default_data_dir("imagenette")`.
        source: `"auto"`, `"local"`, `"keras"` or `"tfds"`, as in
            `load_dataset`.
        image_size: `(height, width)` every tfds image is resized to.
        **kwargs: passed on to `load_dataset`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images in [0, 1] of
        shape `(N, height, width, 3)` and int32 labels in [0, 9].

    Example:

        A tiny stand-in `imagenette.npz` file:

        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "imagenette.npz")
        >>> x = np.zeros((4, 64, 64, 3), dtype=np.uint8)
        >>> y = np.arange(4)
        >>> np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
        >>> (x_train, y_train), _ = load_imagenette(path=path)
        >>> x_train.shape[1:], y_train.tolist()
        ((64, 64, 3), [0, 1, 2, 3])
    """
    return load_dataset(
        "imagenette", path=path, source=source, image_size=image_size, **kwargs
    )


FORMATS = ("numpy", "tf.data")


def to_tf_dataset(x, y, batch_size=128, shuffle=False, seed=0, drop_remainder=False):
    """Wraps arrays in a batched, prefetched `tf.data.Dataset`.

    Keras' `fit` accepts such a pipeline on every backend (TensorFlow must
    be installed).

    Args:
        x: input array.
        y: label array, as long as `x`.
        batch_size: batch size.
        shuffle: whether to reshuffle the whole set every epoch.
        seed: seed of the shuffle.
        drop_remainder: whether to drop the last, smaller batch.

    Returns:
        A `tf.data.Dataset` of `(x_batch, y_batch)`.

    Example:

        >>> ds = to_tf_dataset(np.zeros((5, 2, 2, 1), "float32"), np.arange(5), 2)
        >>> [tuple(x.shape) for x, _ in ds]
        [(2, 2, 2, 1), (2, 2, 2, 1), (1, 2, 2, 1)]
    """
    import tensorflow as tf

    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


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
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "imagenette": load_imagenette,
}


def load(name, format="numpy", batch_size=128, shuffle=True, seed=0, **kwargs):
    """Loads a data set by name, as arrays or as `tf.data` pipelines.

    Args:
        name: `"digits"`, `"mnist"`, `"fashion_mnist"`, `"cifar10"`,
            `"cifar100"` or `"imagenette"` (`"fashion-mnist"` works too).
        format: `"numpy"` for arrays, `"tf.data"` for batched
            `tf.data.Dataset`s (see `to_tf_dataset`).
        batch_size: batch size of the `tf.data` pipelines.
        shuffle: whether the training pipeline reshuffles every epoch (the
            test pipeline never does).
        seed: seed of that shuffle.
        **kwargs: passed to the loader (e.g. `path=`, `source=`,
            `test_fraction=` for digits).

    Returns:
        `(x_train, y_train), (x_test, y_test)` for `"numpy"`;
        `(train_dataset, test_dataset)` for `"tf.data"`.

    Example:

        >>> (x_train, y_train), _ = load("digits", test_fraction=0.5)
        >>> len(x_train)
        898
        >>> train, test = load("digits", format="tf.data", batch_size=100)
        >>> x, y = next(iter(train))
        >>> tuple(x.shape), str(y.dtype)
        ((100, 8, 8, 1), "<dtype: 'int32'>")
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(
            f"Unknown data set {name!r}; known data sets: {', '.join(sorted(LOADERS))}."
        )
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    (x_train, y_train), (x_test, y_test) = LOADERS[key](**kwargs)
    if format == "numpy":
        return (x_train, y_train), (x_test, y_test)
    return (
        to_tf_dataset(x_train, y_train, batch_size, shuffle=shuffle, seed=seed),
        to_tf_dataset(x_test, y_test, batch_size),
    )
