"""A shared test harness for SVP layers, in the spirit of keras-hub's
`run_layer_test`.

`run_layer_test` takes a factory rather than a class and kwargs, because some
layers (`SVPBlock`) wrap layer instances that must be fresh for every copy:

    make_layer(dtype=None, dropout=None) -> a new, unbuilt layer

`dtype` is a dtype policy name to construct with (`None`: the default) and
`dropout` overrides the projection dropout rate (`None`: the layer's own).
`unit_factory` and `projection_factory` build such factories for layers whose
arguments are plain values.

It works for `SVPUnit` subclasses, whose projection is `layer.projection` and
is applied by `layer.project(h)`, and for a bare `RandomProjection`, which is
its own projection and whose input is the activation `h`.
"""

import json
import math

import keras
import numpy as np
from keras import ops

from keras_svp import RandomProjection
from keras_svp.projections import projection_matrix

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def unit_factory(cls, **kwargs):
    """Factory for an `SVPUnit` subclass built from plain keyword arguments."""

    def make_layer(dtype=None, dropout=None):
        config = dict(kwargs)
        if dtype is not None:
            config["dtype"] = dtype
        if dropout is not None:
            config["projection_dropout"] = dropout
        return cls(**config)

    return make_layer


def projection_factory(**kwargs):
    """Factory for a bare `RandomProjection`."""

    def make_layer(dtype=None, dropout=None):
        config = dict(kwargs)
        if dtype is not None:
            config["dtype"] = dtype
        if dropout is not None:
            config["dropout"] = dropout
        return RandomProjection(**config)

    return make_layer


def is_projection(layer):
    return isinstance(layer, RandomProjection)


def get_projection(layer):
    """The layer's `RandomProjection` (the layer itself for a bare one)."""
    return layer if is_projection(layer) else layer.projection


def forward(layer, x, training=False):
    """The layer's activation `h` (for a bare projection: its input)."""
    if is_projection(layer):
        return ops.convert_to_tensor(x)
    return layer(x, training=training)


def project(layer, h, training=False):
    """`z = reduce(h) @ R̃`, through the layer's public API."""
    if is_projection(layer):
        return layer(h, training=training)
    return layer.project(h, training=training)


def as_json(config):
    return json.loads(json.dumps(config))


def to_numpy(x):
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        x = ops.cast(x, "float32")
    return ops.convert_to_numpy(x)


def np_reduce(h, reduction, pool_size):
    """NumPy reference of the projection's `reduce` (float64)."""
    h = np.asarray(h, dtype=np.float64)
    if pool_size is not None:
        ph, pw = pool_size
        b, height, width, c = h.shape
        oh, ow = height // ph, width // pw
        h = h[:, : oh * ph, : ow * pw, :].reshape(b, oh, ph, ow, pw, c)
        h = h.mean(axis=(2, 4))
    if h.ndim == 2:
        return h
    if reduction == "flatten":
        return h.reshape(h.shape[0], -1)
    if reduction == "mean":
        return h.mean(axis=tuple(range(1, h.ndim - 1)))
    assert reduction == "cls" and h.ndim == 3
    return h[:, 0, :]


def perturb_trainable_weights(layer, seed):
    """Moves every trainable weight off its initial value, reproducibly."""
    rng = np.random.default_rng(seed)
    for weight in layer.trainable_weights:
        noise = rng.normal(scale=0.1, size=tuple(weight.shape))
        weight.assign(ops.convert_to_numpy(weight) + noise.astype("float32"))


def random_input(input_shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).normal(size=input_shape).astype(dtype)


def assert_projection_weight(layer, expected_shape):
    """The projection is a fixed, non-trainable (D, d) `projection_matrix`."""
    projection = get_projection(layer)
    assert projection is not None and projection.built
    kernel = projection.kernel
    assert tuple(kernel.shape) == tuple(expected_shape)
    assert not kernel.trainable
    assert keras.backend.standardize_dtype(kernel.dtype) == "float32"
    assert any(kernel is w for w in layer.non_trainable_weights)
    assert not any(kernel is w for w in layer.trainable_weights)
    input_dim, projection_dim = expected_shape
    assert projection.projection_dim == projection_dim
    expected = projection_matrix(
        input_dim, projection_dim, projection.seed, projection.scale
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(kernel), expected)
    if not is_projection(layer):
        assert projection.seed == layer.seed
        assert projection.scale == layer.projection_scale
        assert projection.dropout == layer.projection_dropout
        assert projection.projection_dim == layer.projection_dim
    if expected.size >= 16:
        # The entries' spread follows the scale rule (loosely: few samples).
        fan = input_dim if projection.scale == "fan_in" else projection_dim
        std = 1 / math.sqrt(fan)
        assert 0.5 * std < float(np.std(expected)) < 1.5 * std


def run_layer_test(
    make_layer,
    input_shape,
    expected_output_shape,
    expected_projection_shape,
    tmp_path,
    run_mixed_precision=True,
):
    """Runs the shared checks on one layer configuration.

    Args:
        make_layer: factory, see the module docstring.
        input_shape: full input shape, batch included.
        expected_output_shape: shape of the layer's output `h` for that input.
        expected_projection_shape: `(D, d)`, the projection matrix's shape.
        tmp_path: a directory for the saved model.
        run_mixed_precision: whether to run the mixed precision checks.
    """
    x = random_input(input_shape, seed=1)
    expected_output_shape = tuple(expected_output_shape)

    # Build on the input shape; output shapes, static and actual.
    layer = make_layer()
    layer.build(input_shape)
    assert layer.built
    # A bare projection's output is z, not h.
    static_shape = (
        (input_shape[0], expected_projection_shape[1])
        if is_projection(layer)
        else expected_output_shape
    )
    assert tuple(layer.compute_output_shape(input_shape)) == static_shape
    # Once built, the layer still follows the batch size it is given.
    unbatched = (None,) + tuple(input_shape[1:])
    assert tuple(layer.compute_output_shape(unbatched)) == (None,) + static_shape[1:]
    h = forward(layer, x)
    assert tuple(h.shape) == expected_output_shape
    z = project(layer, h)
    assert tuple(z.shape) == (input_shape[0], expected_projection_shape[1])
    assert keras.backend.standardize_dtype(z.dtype) == "float32"

    # The projection weight.
    assert_projection_weight(layer, expected_projection_shape)

    # Symbolic call, as inside a functional model.
    symbolic = keras.Input(shape=input_shape[1:])
    symbolic_out = make_layer()(symbolic)
    if is_projection(layer):
        assert tuple(symbolic_out.shape) == (None, expected_projection_shape[1])
    else:
        assert tuple(symbolic_out.shape) == (None,) + expected_output_shape[1:]

    perturb_trainable_weights(layer, seed=2)
    h = forward(layer, x)
    z = project(layer, h)
    check_config_round_trip(layer, input_shape, x, h, z)
    check_saving(layer, input_shape, x, h, z, tmp_path)
    check_training_vs_inference(make_layer, input_shape, x)
    if not is_projection(layer):
        check_training(make_layer, input_shape, x, expected_projection_shape[1])
    if run_mixed_precision:
        for policy in MIXED_POLICIES:
            check_mixed_precision(make_layer, policy, input_shape, x)
    return layer


def check_config_round_trip(layer, input_shape, x, h, z):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == config
    clone.build(input_shape)
    # The projection follows from the config (its seed) alone.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(get_projection(clone).kernel),
        ops.convert_to_numpy(get_projection(layer).kernel),
    )
    clone.set_weights(layer.get_weights())
    clone_h = forward(clone, x)
    np.testing.assert_array_equal(to_numpy(clone_h), to_numpy(h))
    np.testing.assert_array_equal(to_numpy(project(clone, clone_h)), to_numpy(z))


def check_saving(layer, input_shape, x, h, z, tmp_path):
    model = keras.Sequential([keras.Input(shape=input_shape[1:]), layer])
    np.testing.assert_array_equal(
        to_numpy(model(x, training=False)), to_numpy(z if is_projection(layer) else h)
    )
    path = str(tmp_path / f"{layer.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # No custom_objects.
    loaded_layer = loaded.layers[0]
    assert type(loaded_layer) is type(layer)
    # The .keras file stores the config as JSON: tuples come back as lists.
    assert as_json(loaded_layer.get_config()) == as_json(layer.get_config())
    np.testing.assert_array_equal(
        ops.convert_to_numpy(get_projection(loaded_layer).kernel),
        ops.convert_to_numpy(get_projection(layer).kernel),
    )
    assert not get_projection(loaded_layer).kernel.trainable
    out = loaded(x, training=False)
    np.testing.assert_array_equal(to_numpy(out), to_numpy(model(x, training=False)))
    if not is_projection(layer):
        loaded_h = forward(loaded_layer, x)
        np.testing.assert_array_equal(to_numpy(loaded_h), to_numpy(h))
        np.testing.assert_array_equal(
            to_numpy(project(loaded_layer, loaded_h)), to_numpy(z)
        )


def check_training(make_layer, input_shape, x, num_classes):
    # Inside an SVP model, fit moves every trainable weight of the unit from
    # its local loss and leaves the projection alone.
    from keras_svp import SVPSequential

    layer = make_layer()
    model = SVPSequential(
        [layer, keras.layers.Flatten(), keras.layers.Dense(num_classes)]
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.build(input_shape)
    before = [to_numpy(w).copy() for w in layer.trainable_weights]
    projection = to_numpy(get_projection(layer).kernel).copy()
    y = np.arange(input_shape[0]) % num_classes
    history = model.fit(x, y, batch_size=input_shape[0], epochs=2, verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert before, "the unit has no trainable weights"
    for old, new in zip(before, layer.trainable_weights):
        assert not np.array_equal(old, to_numpy(new)), new.path
    np.testing.assert_array_equal(projection, to_numpy(get_projection(layer).kernel))


def check_training_vs_inference(make_layer, input_shape, x):
    # Without dropout the projection ignores `training`.
    layer = make_layer(dropout=0.0)
    layer.build(input_shape)
    h = forward(layer, x, training=False)
    z_inference = to_numpy(project(layer, h, training=False))
    z_training = to_numpy(project(layer, h, training=True))
    np.testing.assert_array_equal(z_training, z_inference)
    assert_inference_projection(layer, h, z_inference)

    # With dropout, training draws a fresh mask per call; inference is R.
    layer = make_layer(dropout=0.5)
    layer.build(input_shape)
    h = forward(layer, x, training=False)
    z_inference = to_numpy(project(layer, h, training=False))
    z_training = to_numpy(project(layer, h, training=True))
    z_training_again = to_numpy(project(layer, h, training=True))
    assert np.all(np.isfinite(z_training))
    assert not np.allclose(z_training, z_inference)
    assert not np.allclose(z_training, z_training_again)
    assert_inference_projection(layer, h, z_inference)
    np.testing.assert_array_equal(
        to_numpy(project(layer, h, training=False)), z_inference
    )


def assert_inference_projection(layer, h, z, tolerance=1e-5):
    """At inference, `z == reduce(h) @ R`.

    Checked against a float64 NumPy reference (to `tolerance`), and exactly
    against the float32 product of the projection's own `features` and `R`.
    """
    projection = get_projection(layer)
    features = np_reduce(to_numpy(h), projection.reduction, projection.pool_size)
    kernel = ops.convert_to_numpy(projection.kernel).astype(np.float64)
    np.testing.assert_allclose(z, features @ kernel, rtol=tolerance, atol=tolerance)
    # What `RandomProjection.__call__` does: cast the input to the
    # projection's compute dtype, reduce, cast to float32, multiply by R.
    h = ops.cast(ops.convert_to_tensor(h), projection.compute_dtype)
    own = ops.matmul(ops.cast(projection.features(h), "float32"), projection.kernel)
    np.testing.assert_array_equal(z, to_numpy(own))


def check_mixed_precision(make_layer, policy, input_shape, x):
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    layer = make_layer(dtype=policy)
    assert layer.dtype_policy.name == policy
    assert layer.compute_dtype == compute_dtype
    h = forward(layer, x, training=False)
    if is_projection(layer):
        # A bare projection's input is the activation of a layer running in
        # the same policy.
        h = ops.cast(h, compute_dtype)
    z = project(layer, h, training=False)
    if not is_projection(layer):
        assert keras.backend.standardize_dtype(h.dtype) == compute_dtype
        assert np.all(np.isfinite(to_numpy(h)))
        for weight in layer.trainable_weights:
            assert keras.backend.standardize_dtype(weight.dtype) == "float32"
        h_training = forward(layer, x, training=True)
        assert keras.backend.standardize_dtype(h_training.dtype) == compute_dtype
        assert np.all(np.isfinite(to_numpy(h_training)))
    assert keras.backend.standardize_dtype(z.dtype) == "float32"
    assert np.all(np.isfinite(to_numpy(z)))
    assert keras.backend.standardize_dtype(get_projection(layer).kernel.dtype) == (
        "float32"
    )
    z_training = project(layer, h, training=True)
    assert keras.backend.standardize_dtype(z_training.dtype) == "float32"
    assert np.all(np.isfinite(to_numpy(z_training)))
    # The projection of the low-precision activation is float32 arithmetic
    # on it (a bare projection pools in its compute dtype, hence the
    # tolerance).
    assert_inference_projection(layer, h, to_numpy(z), tolerance=1e-2)
