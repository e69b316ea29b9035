"""Tests of `keras_svp.layers.pooling.MaxPooling2D` against Keras' layer."""

import keras
import numpy as np
import pytest
from keras import ops
from numeric_gradient import backend_gradient

import keras_svp
from keras_svp.benchmarks import memory
from keras_svp.layers.pooling import MaxPooling2D

BACKEND = keras.backend.backend()
CASES = [
    # input shape (channels last), pool_size, strides, padding
    ((2, 8, 8, 3), 2, None, "valid"),
    ((2, 7, 9, 3), 2, None, "valid"),  # odd sizes: the last row/column dropped
    ((1, 9, 8, 2), (3, 2), None, "valid"),
    ((2, 8, 8, 3), 3, 2, "valid"),  # overlapping: Keras' pooling
    ((2, 7, 7, 3), 2, None, "same"),
]


def pair(layer_class, pool_size, strides, padding, data_format):
    return layer_class(
        pool_size, strides=strides, padding=padding, data_format=data_format
    )


def to_layout(x, data_format):
    return x if data_format == "channels_last" else np.transpose(x, (0, 3, 1, 2))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape, pool_size, strides, padding", CASES)
def test_matches_keras_forward_and_gradient(
    shape, pool_size, strides, padding, data_format
):
    if data_format == "channels_first" and BACKEND == "tensorflow":
        pytest.skip("TensorFlow's CPU pooling has no channels_first kernel.")
    x = to_layout(
        np.random.default_rng(0).standard_normal(shape).astype("float32"),
        data_format,
    )
    ours = pair(MaxPooling2D, pool_size, strides, padding, data_format)
    theirs = pair(keras.layers.MaxPooling2D, pool_size, strides, padding, data_format)
    expected = ops.convert_to_numpy(theirs(x))
    got = ops.convert_to_numpy(ours(x))
    assert got.shape == expected.shape == tuple(ours.compute_output_shape(x.shape))
    np.testing.assert_array_equal(got, expected)
    # Distinct values (no ties): the same gradient. A weighted sum makes each
    # output's gradient distinct.
    weights = np.random.default_rng(1).standard_normal(expected.shape)
    weights = ops.convert_to_tensor(weights.astype("float32"))
    np.testing.assert_allclose(
        backend_gradient(lambda v: ops.sum(ours(v) * weights), x),
        backend_gradient(lambda v: ops.sum(theirs(v) * weights), x),
        rtol=1e-6,
    )


def test_gradient_of_tied_maxima_goes_to_the_maxima_and_sums_to_one():
    # Every 2x2 window of ReLU-like zeros and one tied pair of maxima.
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = 1.0  # a tie in the first window
    x[0, 2, 3, 0] = 2.0
    gradient = backend_gradient(lambda v: ops.sum(MaxPooling2D(2)(v)), x)[..., 0]
    windows = gradient[0].reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)
    np.testing.assert_allclose(windows.sum(axis=1), 1.0, rtol=1e-6)
    assert gradient[0, 0, 1] == gradient[0, 1, 0] == 0  # not maxima
    assert gradient[0, 0, 0] + gradient[0, 1, 1] == pytest.approx(1.0)
    assert gradient[0, 2, 3] == 1.0


def test_config_round_trip_and_serialization():
    layer = MaxPooling2D((3, 2), data_format="channels_first", name="pool")
    config = layer.get_config()
    assert config["pool_size"] == (3, 2) and config["strides"] == (3, 2)
    assert config["data_format"] == "channels_first"
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(clone) is MaxPooling2D
    assert clone.get_config() == config


def test_mixed_precision_keeps_the_compute_dtype():
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype("float16")
    y = MaxPooling2D(2, dtype="mixed_float16")(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    np.testing.assert_array_equal(
        ops.convert_to_numpy(y), ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(x))
    )


def test_svp_conv2d_pools_with_it():
    layer = keras_svp.SVPConv2D(4, 3, pool_size=2, projection_dim=4)
    assert type(layer.pool) is MaxPooling2D
    assert layer.pool.data_format == layer.conv.data_format


@pytest.mark.skipif(BACKEND != "jax", reason="XLA's memory analysis is JAX's")
def test_compiled_svp_step_needs_less_memory_than_with_keras_pooling():
    # Keras' pooling makes XLA keep an index map per pooled input alive
    # through the step; this pooling keeps none.
    x = np.random.default_rng(0).standard_normal((16, 16, 16, 3)).astype("float32")
    y = np.arange(16) % 10

    def step_mib(keras_pooling):
        units = [keras_svp.SVPConv2D(16, 3, pool_size=2, seed=i) for i in range(2)]
        if keras_pooling:
            for unit in units:
                unit.pool = keras.layers.MaxPooling2D(2)
        model = keras_svp.SVPSequential(
            units + [keras.layers.Flatten(), keras.layers.Dense(10)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
        return memory.step_memory(model, x, y)["step_mib"]

    assert step_mib(keras_pooling=False) < 0.8 * step_mib(keras_pooling=True)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's two paths")
def test_tensorflow_reshapes_under_xla_only():
    import tensorflow as tf

    x = np.random.default_rng(0).standard_normal((2, 7, 9, 3)).astype("float32")
    layer, reference = MaxPooling2D(2), keras.layers.MaxPooling2D(2)

    def value_and_gradient(pool, jit_compile):
        @tf.function(jit_compile=jit_compile)
        def run(v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                y = pool(v)
                weights = tf.range(1.0, 1.0 + tf.size(y, tf.float32))
                loss = tf.reduce_sum(y * tf.reshape(weights, tf.shape(y)))
            return y, tape.gradient(loss, v)

        ops_used = {
            op.type
            for op in run.get_concrete_function(
                tf.TensorSpec(x.shape)
            ).graph.get_operations()
        }
        return [t.numpy() for t in run(tf.constant(x))], ops_used

    (expected, expected_gradient), _ = value_and_gradient(reference, False)
    (fused, fused_gradient), fused_ops = value_and_gradient(layer, False)
    (xla, xla_gradient), xla_ops = value_and_gradient(layer, True)
    assert "MaxPool" in fused_ops
    assert "MaxPool" not in xla_ops and "Max" in xla_ops
    for got, gradient in ((fused, fused_gradient), (xla, xla_gradient)):
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-6)
    # A map of unknown size cannot be reshaped: Keras' pooling, under XLA too.
    unknown = tf.function(layer, jit_compile=True).get_concrete_function(
        tf.TensorSpec((None, None, None, 3))
    )
    assert "MaxPool" in {op.type for op in unknown.graph.get_operations()}


def test_maps_of_unknown_size_pool_as_keras_does():
    # A functional model on images of any size.
    inputs = keras.Input(shape=(None, None, 3))
    model = keras.Model(inputs, MaxPooling2D(2)(inputs))
    assert tuple(model.output.shape) == (None, None, None, 3)
    x = np.random.default_rng(0).standard_normal((2, 7, 9, 3)).astype("float32")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(model(x)),
        ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(x)),
    )
