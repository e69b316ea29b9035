"""Bad data stops training with an error that names the problem, whether it
comes as arrays (checked before fit) or batch by batch (checked in the
step), in both modes."""

import keras
import numpy as np
import pytest

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
NONFINITE = "NaN or Inf values"
OUT_OF_RANGE = r"class ids in \[0, 10\)"


def model(mode="svp"):
    model = keras_svp.SVPSequential(
        [keras_svp.SVPDense(16), keras_svp.SVPDense(16), keras.layers.Dense(10)],
        mode=mode,
    )
    model.compile("adam", CE)
    return model


def batches():
    rng = np.random.default_rng(0)
    return rng.random((64, 8)).astype("float32"), rng.integers(0, 10, 64)


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size=16):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


def as_dataset(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


SOURCES = {
    "arrays": lambda x, y: dict(x=x, y=y, batch_size=16),
    "tf.data": lambda x, y: dict(x=as_dataset(x, y)),
    "PyDataset": lambda x, y: dict(x=Batches(x, y)),
}


def fit(net, source, x, y, **kwargs):
    return net.fit(**SOURCES[source](x, y), epochs=1, verbose=0, **kwargs)


# Arrays are checked before fit (a ValueError); datasets in the step, where
# each backend wraps the error (InvalidArgumentError on TensorFlow,
# JaxRuntimeError on JAX) with the message. Each case compiles a new step,
# so the bad values cycle over the sources rather than multiply them.
CASES = [
    ("arrays", "svp", np.nan, 10),
    ("tf.data", "svp", np.inf, -1),
    ("tf.data", "bp", -np.inf, 10),
    ("PyDataset", "svp", np.nan, 255),
]


@pytest.mark.parametrize("source, mode, bad_input, bad_label", CASES)
def test_nonfinite_inputs_and_labels_out_of_range_stop_training(
    source, mode, bad_input, bad_label
):
    x, y = batches()
    x_bad = x.copy()
    x_bad[37, 2] = bad_input  # in the third batch
    with pytest.raises(Exception, match=NONFINITE):
        fit(model(mode), source, x_bad, y)
    y_bad = y.copy()
    y_bad[50] = bad_label
    with pytest.raises(Exception, match=OUT_OF_RANGE):
        fit(model(mode), source, x, y_bad)


def test_evaluate_checks_batches_and_float_labels_are_checked_for_nan():
    x, y = batches()
    net = model()
    fit(net, "arrays", x, y)
    before = [keras.ops.convert_to_numpy(w) for w in net.weights]
    x_bad = x.copy()
    x_bad[5, 0] = np.nan
    with pytest.raises(Exception, match=NONFINITE):
        net.evaluate(**SOURCES["tf.data"](x_bad, y), verbose=0)
    y_nan = y.astype("float32")
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(net, "arrays", x, y_nan)
    with pytest.raises(Exception, match="NaN"):
        fit(net, "tf.data", x, y_nan)
    # The errors left the model as it was, usable.
    for old, new in zip(before, net.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    fit(net, "tf.data", x, y)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_labels_of_the_wrong_shape_are_rejected(source):
    x, y = batches()
    one_hot_7 = np.eye(7, dtype="float32")[y % 7]
    with pytest.raises(ValueError, match="One-hot labels have 7 columns"):
        fit(model(), source, x, one_hot_7)
    with pytest.raises(ValueError, match=r"Labels have shape \(.*2, 5\)"):
        fit(model(), source, x, np.zeros((64, 2, 5), "float32"))


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_inputs_of_another_shape_after_building_are_rejected(source):
    x, y = batches()
    net = model()
    fit(net, source, x, y)
    with pytest.raises(Exception, match=r"built for inputs of shape \(None, 8\)"):
        fit(net, source, np.zeros((64, 9), "float32"), y)


def test_fit_before_compile_is_rejected():
    x, y = batches()
    net = keras_svp.SVPSequential([keras_svp.SVPDense(16), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="compile"):
        net.fit(x, y, verbose=0)


def test_a_last_batch_of_one_sample_trains_without_nan():
    x, y = batches()
    net = keras_svp.SVPSequential(
        [
            keras.layers.Reshape((2, 4, 1)),
            keras_svp.SVPConv2D(4, 2),  # BatchNorm over a single sample
            keras.layers.Flatten(),
            keras_svp.SVPDense(16),  # LayerNorm, alignment of one sample
            keras.layers.Dense(10),
        ]
    )
    net.compile("adam", CE)
    history = net.fit(x[:33], y[:33], batch_size=32, epochs=2, verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in net.weights)
    logs = net.train_on_batch(x[:1], y[:1], return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
