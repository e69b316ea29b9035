"""keras_svp.datasets on real offline data and on small IDX files."""

import gzip
import os
import struct

import keras
import numpy as np
import pytest

from keras_svp import datasets

DEBIAN_DIR = datasets.DEBIAN_FASHION_MNIST_DIR


def _check_arrays(data, image_shape, train_size=None, test_size=None):
    (x_train, y_train), (x_test, y_test) = data
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.dtype == np.float32
        assert y.dtype == np.int32
        assert x.shape[1:] == image_shape
        assert y.shape == (len(x),)
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(y)) == set(range(10))
    if train_size is not None:
        assert len(x_train) == train_size
    if test_size is not None:
        assert len(x_test) == test_size


# Digits ---------------------------------------------------------------------


def test_digits_shapes_ranges_dtypes():
    data = datasets.load_digits()
    _check_arrays(data, (8, 8, 1), train_size=1437, test_size=360)
    (x_train, _), (x_test, _) = data
    # The full range is used: 0 -> 0.0 and 16 -> 1.0.
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # 17 gray levels, all multiples of 1/16.
    np.testing.assert_allclose(x_test * 16, np.round(x_test * 16), atol=1e-6)


def test_digits_split_is_stratified_and_disjoint():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(test_fraction=0.25)
    assert len(x_train) + len(x_test) == 1797
    train_frac = np.bincount(y_train) / len(y_train)
    test_frac = np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(train_frac, test_frac, atol=0.01)
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    test_rows = {row.tobytes() for row in x_test.reshape(len(x_test), -1)}
    # sklearn's digits has one duplicated image; the split itself is disjoint.
    assert len(train_rows & test_rows) <= 1


def test_digits_is_deterministic_and_seeded():
    a = datasets.load_digits(seed=3)
    b = datasets.load_digits(seed=3)
    c = datasets.load_digits(seed=4)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[1][1], c[1][1])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_digits_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load_digits(test_fraction=fraction)


# load() ---------------------------------------------------------------------


def test_load_dispatches_by_name():
    (x_train, _), (x_test, _) = datasets.load("digits", test_fraction=0.5, seed=1)
    assert len(x_train) == 898 and len(x_test) == 899


def test_load_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="mnist") as info:
        datasets.load("svhn")
    assert "digits" in str(info.value) and "fashion_mnist" in str(info.value)
    assert "svhn" in str(info.value) and "cifar100" in str(info.value)


def test_load_accepts_dashed_name(tmp_path):
    _write_fake_fashion(tmp_path, n_train=10, n_test=10)
    (x_train, _), _ = datasets.load("Fashion-MNIST", path=tmp_path)
    assert x_train.shape == (10, 28, 28, 1)


# Fashion-MNIST from Debian's dataset-fashion-mnist package -------------------


@pytest.fixture(scope="module")
def debian_fashion():
    if not os.path.isdir(DEBIAN_DIR):
        pytest.skip(
            f"{DEBIAN_DIR} is absent: apt-get install dataset-fashion-mnist "
            "to run the tests on the real Fashion-MNIST files"
        )
    return datasets.load_fashion_mnist(DEBIAN_DIR)


def test_fashion_mnist_debian_files(debian_fashion):
    _check_arrays(debian_fashion, (28, 28, 1), train_size=60000, test_size=10000)
    (x_train, y_train), (x_test, y_test) = debian_fashion
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # Pixels are k / 255 for integers k.
    np.testing.assert_allclose(
        x_test[:100] * 255, np.round(x_test[:100] * 255), atol=1e-4
    )
    # Well-known values of the published files.
    np.testing.assert_array_equal(y_train[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    np.testing.assert_array_equal(y_test[:10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])


def test_fashion_mnist_default_path_is_debian(monkeypatch, debian_fashion):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    assert datasets.default_fashion_mnist_dir() == DEBIAN_DIR
    (_, y_train), (x_test, _) = datasets.load_fashion_mnist()
    np.testing.assert_array_equal(y_train, debian_fashion[0][1])
    np.testing.assert_array_equal(x_test, debian_fashion[1][0])


# IDX reader and writer -------------------------------------------------------


def _write_fake_fashion(directory, n_train, n_test, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        datasets.write_idx(
            os.path.join(directory, f"{split}-images-idx3-ubyte{suffix}"), images
        )
        datasets.write_idx(
            os.path.join(directory, f"{split}-labels-idx1-ubyte{suffix}"), labels
        )
        arrays[split] = (images, labels)
    return arrays


def _raw_idx(type_code, shape, payload):
    header = bytes([0, 0, type_code, len(shape)]) + struct.pack(
        f">{len(shape)}I", *shape
    )
    return header + payload


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_handwritten_file(tmp_path, gz):
    # Written by hand, not by write_idx: 2 x 3 uint8 values.
    data = _raw_idx(0x08, (2, 3), bytes([0, 1, 2, 253, 254, 255]))
    path = tmp_path / "x-idx2-ubyte"
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    array = datasets.read_idx(path)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, [[0, 1, 2], [253, 254, 255]])


def test_read_idx_big_endian_int32(tmp_path):
    path = tmp_path / "ints"
    path.write_bytes(_raw_idx(0x0C, (2,), struct.pack(">2i", 1, -2)))
    array = datasets.read_idx(path)
    assert array.dtype == np.int32 and array.dtype.isnative
    np.testing.assert_array_equal(array, [1, -2])


@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"]
)
@pytest.mark.parametrize("name", ["a-idx", "a-idx.gz"])
def test_write_read_round_trip(tmp_path, dtype, name):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "uint8":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    datasets.write_idx(tmp_path / name, array)
    raw = (tmp_path / name).read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    result = datasets.read_idx(tmp_path / name)
    assert result.dtype == array.dtype
    np.testing.assert_array_equal(result, array)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        datasets.write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "magic number"),
        (b"\x00\x00", "magic number"),
        (b"PK\x03\x04rest of a zip file", "bad magic number"),
        (bytes([0, 0, 0x07, 1]) + b"\x00\x00\x00\x01x", "bad magic number"),
        (bytes([0, 0, 0x08, 0]), "bad magic number"),
        (bytes([0, 0, 0x08, 3]) + b"\x00\x00\x00\x02", "truncated"),
        (_raw_idx(0x08, (2, 28, 28), bytes(2 * 28 * 28 - 1)), "truncated"),
        (_raw_idx(0x08, (3,), bytes(4)), "longer than its header"),
    ],
)
def test_read_idx_corrupt_files(tmp_path, data, match):
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(datasets.IDXFormatError, match=match):
        datasets.read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    data = gzip.compress(_raw_idx(0x08, (100,), bytes(range(100))))
    path = tmp_path / "cut-idx.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(datasets.IDXFormatError, match="cut-idx.gz"):
        datasets.read_idx(path)


def test_idx_format_error_is_value_error():
    assert issubclass(datasets.IDXFormatError, ValueError)


# load_fashion_mnist on small files -------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_directory(tmp_path, gz):
    arrays = _write_fake_fashion(tmp_path, n_train=20, n_test=10, gz=gz)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(tmp_path)
    _check_arrays(
        ((x_train, y_train), (x_test, y_test)),
        (28, 28, 1),
        train_size=20,
        test_size=10,
    )
    np.testing.assert_allclose(x_train[..., 0] * 255, arrays["train"][0], atol=1e-4)
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])


def test_fashion_mnist_mixed_gz_and_raw(tmp_path):
    _write_fake_fashion(tmp_path, n_train=10, n_test=10, gz=True)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    datasets.write_idx(
        tmp_path / "t10k-labels-idx1-ubyte", np.arange(10, dtype=np.uint8)
    )
    (_, _), (_, y_test) = datasets.load_fashion_mnist(str(tmp_path))
    np.testing.assert_array_equal(y_test, np.arange(10))


def test_fashion_mnist_env_var(tmp_path, monkeypatch):
    (tmp_path / "fashion-mnist").mkdir()
    _write_fake_fashion(tmp_path / "fashion-mnist", n_train=10, n_test=10)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert datasets.default_fashion_mnist_dir() == str(tmp_path / "fashion-mnist")
    (x_train, _), _ = datasets.load_fashion_mnist()
    assert x_train.shape == (10, 28, 28, 1)


def test_fashion_mnist_corrupt_file_raises_not_falls_back(tmp_path, monkeypatch):
    _write_fake_fashion(tmp_path, n_train=10, n_test=10, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    monkeypatch.setattr(
        keras.datasets.fashion_mnist,
        "load_data",
        lambda: pytest.fail("must not fall back on a corrupt file"),
    )
    with pytest.raises(datasets.IDXFormatError, match="train-images"):
        datasets.load_fashion_mnist(tmp_path)


def test_fashion_mnist_mismatched_counts(tmp_path):
    _write_fake_fashion(tmp_path, n_train=10, n_test=10)
    datasets.write_idx(
        tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8)
    )
    with pytest.raises(datasets.IDXFormatError, match="train labels"):
        datasets.load_fashion_mnist(tmp_path)


def test_fashion_mnist_bad_labels(tmp_path):
    _write_fake_fashion(tmp_path, n_train=10, n_test=10)
    datasets.write_idx(
        tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, dtype=np.uint8)
    )
    with pytest.raises(datasets.IDXFormatError, match=r"\[0, 9\]"):
        datasets.load_fashion_mnist(tmp_path)


def _offline(*args, **kwargs):
    raise OSError("simulated: no internet")


def test_fashion_mnist_missing_everywhere_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", _offline)
    missing = tmp_path / "nowhere"
    with pytest.warns(UserWarning, match="not found"):
        with pytest.raises(FileNotFoundError) as info:
            datasets.load_fashion_mnist(missing)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "path=" in message
    assert str(missing) in message
    assert "simulated: no internet" in message
    assert isinstance(info.value.__cause__, OSError)


def test_fashion_mnist_default_dir_missing(tmp_path, monkeypatch):
    # The default directory (through the env var) is absent: no warning,
    # the same error.
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", _offline)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist()


def test_fashion_mnist_incomplete_directory_names_missing_file(tmp_path, monkeypatch):
    _write_fake_fashion(tmp_path, n_train=10, n_test=10)
    os.remove(tmp_path / "t10k-images-idx3-ubyte.gz")
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", _offline)
    with pytest.warns(UserWarning):
        with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
            datasets.load_fashion_mnist(tmp_path)


def test_fashion_mnist_falls_back_to_keras(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    y = (np.arange(20) % 10).astype(np.uint8)
    monkeypatch.setattr(
        keras.datasets.fashion_mnist,
        "load_data",
        lambda: ((x[:12], y[:12]), (x[12:], y[12:])),
    )
    with pytest.warns(UserWarning, match="keras.datasets.fashion_mnist"):
        (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(
            tmp_path / "nowhere"
        )
    assert x_train.shape == (12, 28, 28, 1) and x_test.shape == (8, 28, 28, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    np.testing.assert_allclose(x_test[..., 0] * 255, x[12:], atol=1e-4)


# Every data set of SPECS: local .npz, keras.datasets, tfds (mock data) ------


def _uint8_images(n, shape, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, size=(n, *shape), dtype=np.uint8
    )


def _write_npz(path, spec, n_train=12, n_test=8):
    shape = spec.image_shape or (16, 16, 3)
    x_train, x_test = _uint8_images(n_train, shape), _uint8_images(n_test, shape, 1)
    y_train = np.arange(n_train) % spec.num_classes
    y_test = (np.arange(n_test) + 3) % spec.num_classes
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return x_train, y_train, x_test, y_test


@pytest.mark.parametrize("name", sorted(datasets.SPECS))
def test_npz_in_data_dir(name, tmp_path, monkeypatch):
    spec = datasets.SPECS[name]
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    (tmp_path / spec.directory).mkdir()
    x_train, y_train, _, y_test = _write_npz(
        tmp_path / spec.directory / spec.npz_name, spec
    )
    (xa, ya), (xb, yb) = datasets.load(name, source="local")
    assert xa.dtype == xb.dtype == np.float32 and ya.dtype == yb.dtype == np.int32
    assert xa.shape == x_train.shape and xa.ndim == 4
    np.testing.assert_allclose(xa * 255, x_train, atol=1e-4)
    np.testing.assert_array_equal(ya, y_train)
    np.testing.assert_array_equal(yb, y_test)


def test_npz_file_as_path(tmp_path):
    spec = datasets.SPECS["cifar100"]
    _write_npz(tmp_path / "anything.npz", spec, n_train=150)
    (x_train, y_train), _ = datasets.load_cifar100(tmp_path / "anything.npz")
    assert x_train.shape == (150, 32, 32, 3) and y_train.max() == 99


def test_npz_with_wrong_image_shape(tmp_path):
    np.savez(
        tmp_path / "cifar10.npz",
        x_train=_uint8_images(4, (28, 28)),
        y_train=np.zeros(4),
        x_test=_uint8_images(4, (28, 28)),
        y_test=np.zeros(4),
    )
    with pytest.raises(
        datasets.IDXFormatError, match=r"CIFAR-10 train images.*\(N, 32, 32, 3\)"
    ):
        datasets.load_cifar10(tmp_path, source="local")


def test_npz_missing_array(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28)))
    with pytest.raises(datasets.IDXFormatError, match="y_train"):
        datasets.load_mnist(tmp_path)


def test_mnist_idx_directory(tmp_path):
    arrays = _write_fake_fashion(tmp_path, n_train=10, n_test=10)
    (x_train, _), (_, y_test) = datasets.load_mnist(tmp_path, source="local")
    np.testing.assert_allclose(x_train[..., 0] * 255, arrays["train"][0], atol=1e-4)
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "imagenette"])
def test_missing_data_set_says_how_to_get_it(name, tmp_path, monkeypatch):
    spec = datasets.SPECS[name]
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load(name, source="local")
    message = str(info.value)
    assert datasets.DATA_DIR_ENV in message
    assert str(tmp_path / spec.directory) in message
    assert spec.npz_name in message
    assert "pip install tensorflow-datasets" in message
    assert spec.tfds_name in message
    assert isinstance(info.value, FileNotFoundError)


def test_auto_source_tries_keras_then_explains(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", _offline)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load_cifar10()
    message = str(info.value)
    assert "keras.datasets.cifar10" in message and "simulated: no internet" in message
    assert "cifar10.npz" in message


def test_keras_source_cifar_labels_are_flattened(monkeypatch):
    x = _uint8_images(6, (32, 32, 3))
    y = np.arange(6).reshape(6, 1) % 10
    calls = []

    def fake_load_data(**options):
        calls.append(options)
        return (x[:4], y[:4]), (x[4:], y[4:])

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", fake_load_data)
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar100(
        source="keras", label_mode="coarse"
    )
    assert calls == [{"label_mode": "coarse"}]
    assert x_train.shape == (4, 32, 32, 3) and y_test.shape == (2,)
    np.testing.assert_array_equal(y_train, [0, 1, 2, 3])


def test_imagenette_has_no_keras_source():
    with pytest.raises(ValueError, match="source='tfds'"):
        datasets.load_imagenette(source="keras")


def test_bad_source_and_format():
    with pytest.raises(ValueError, match="source must be one of"):
        datasets.load_mnist(source="internet")
    with pytest.raises(ValueError, match="format must be one of"):
        datasets.load("digits", format="torch")


@pytest.fixture()
def tfds_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        yield


@pytest.mark.parametrize(
    "name, shape, num_classes",
    [
        ("mnist", (28, 28, 1), 10),
        ("fashion_mnist", (28, 28, 1), 10),
        ("cifar10", (32, 32, 3), 10),
        ("cifar100", (32, 32, 3), 100),
    ],
)
def test_tfds_source_with_mock_data(tfds_mock, name, shape, num_classes):
    (x_train, y_train), (x_test, y_test) = datasets.load(name, source="tfds")
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.shape == (12, *shape) and x.dtype == np.float32
        assert y.shape == (12,) and y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
        assert 0 <= y.min() and y.max() < num_classes


def test_tfds_imagenette_is_resized(tfds_mock):
    # The mock images have random sizes, like the real ones.
    (x_train, _), (x_test, y_test) = datasets.load_imagenette(
        source="tfds", image_size=(24, 20)
    )
    assert x_train.shape == (12, 24, 20, 3) and x_test.shape == (12, 24, 20, 3)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() <= x_train.max() <= 1.0
    assert y_test.max() < 10


def test_tfds_format_tf_data(tfds_mock):
    train, test = datasets.load(
        "cifar10", source="tfds", format="tf.data", batch_size=5
    )
    sizes = [int(x.shape[0]) for x, _ in train]
    assert sizes == [5, 5, 2]
    x, y = next(iter(test))
    assert tuple(x.shape) == (5, 32, 32, 3) and x.dtype.name == "float32"


def test_tf_data_train_reshuffles_test_keeps_order():
    train, test = datasets.load("digits", format="tf.data", batch_size=2000, seed=3)
    (_, y_train), (_, y_test) = datasets.load_digits()
    epoch_1 = next(iter(train))[1].numpy()
    epoch_2 = next(iter(train))[1].numpy()
    assert sorted(epoch_1) == sorted(y_train) and not np.array_equal(epoch_1, epoch_2)
    np.testing.assert_array_equal(next(iter(test))[1].numpy(), y_test)


def test_tf_data_trains_a_keras_model_on_real_fashion_mnist(debian_fashion):
    # The local path on the real offline files, through tf.data, on the
    # suite's backend.
    train, test = datasets.load(
        "fashion_mnist", path=DEBIAN_DIR, format="tf.data", batch_size=256
    )
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train.take(40), epochs=1, verbose=0)
    _, accuracy = model.evaluate(test.take(8), verbose=0)
    assert accuracy > 0.6
