"""Tests of the SVP layers and `RandomProjection`, through `layer_harness`."""

import math

import keras
import numpy as np
import pytest
from keras import ops
from layer_harness import projection_factory
from layer_harness import run_layer_test
from layer_harness import unit_factory

import keras_svp
from keras_svp import RandomProjection
from keras_svp import SVPBlock
from keras_svp import SVPConv2D
from keras_svp import SVPDense
from keras_svp.projections import projection_matrix

# `projection_matrix(6, 3, seed=123)` (and with scale="jl"), computed once
# with NumPy's PCG64 and pasted here: the projection must be the same on
# every backend, device and NumPy version for a given seed.
GOLDEN_FAN_IN = np.array(
    [
        [-0.4038071, -0.15014827, 0.5257933],
        [0.079189725, 0.37568268, 0.23560163],
        [-0.25983518, 0.22125107, -0.12924956],
        [-0.1316148, 0.039668392, -0.6229585],
        [0.48669976, -0.2739712, 0.40835828],
        [0.055652864, 0.6254499, -0.26943138],
    ],
    dtype="float32",
)
GOLDEN_JL = np.array(
    [
        [-0.5710695, -0.21234173, 0.743584],
        [0.11199118, 0.53129554, 0.33319104],
        [-0.36746246, 0.31289625, -0.18278646],
        [-0.18613145, 0.05609958, -0.88099635],
        [0.68829745, -0.3874538, 0.5775058],
        [0.078705035, 0.8845197, -0.3810335],
    ],
    dtype="float32",
)


# --------------------------------------------------------------------------
# The harness on every layer.


def block_factory(reduction, inner_width=16, **kwargs):
    """SVPBlock of Dense + LayerNormalization; fresh inner layers each call."""

    def make_layer(dtype=None, dropout=None):
        config = {"projection_dim": 5, "seed": 11, **kwargs}
        if dtype is not None:
            config["dtype"] = dtype
        if dropout is not None:
            config["projection_dropout"] = dropout
        # The wrapped layers run in the block's policy only if given it.
        layers = [
            keras.layers.Dense(inner_width, dtype=dtype),
            keras.layers.LayerNormalization(dtype=dtype),
        ]
        return SVPBlock(layers, reduction=reduction, **config)

    return make_layer


DENSE_CASES = {
    "dense": (
        dict(units=8, projection_dim=3, seed=123),
        (4, 6),
        (4, 8),
        (8, 3),
    ),
    "dense_jl_batchnorm": (
        dict(
            units=12,
            projection_dim=4,
            seed=5,
            projection_scale="jl",
            normalization="batch",
            activation="relu",
        ),
        (3, 7),
        (3, 12),
        (12, 4),
    ),
    "dense_sequence_flatten": (
        dict(units=8, projection_dim=3, seed=7, normalization=None),
        (2, 5, 6),
        (2, 5, 8),
        (40, 3),
    ),
    "dense_unseeded": (
        dict(units=8, projection_dim=3, projection_dropout=0.2),
        (4, 6),
        (4, 8),
        (8, 3),
    ),
}


@pytest.mark.parametrize("case", sorted(DENSE_CASES))
def test_svp_dense(case, tmp_path):
    kwargs, input_shape, output_shape, projection_shape = DENSE_CASES[case]
    run_layer_test(
        unit_factory(SVPDense, **kwargs),
        input_shape,
        output_shape,
        projection_shape,
        tmp_path,
    )


def test_svp_dense_is_layernorm_then_exact_gelu_by_default():
    # GELU is the default because the accuracy benchmark chose it (see the
    # docstring); the erf form, as `keras.activations.gelu` computes it.
    layer = SVPDense(8, projection_dim=3, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    h = ops.convert_to_numpy(layer(x))
    pre = ops.convert_to_numpy(layer.norm(layer.dense(x)))
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(h, 0.5 * pre * (1 + erf(pre / np.sqrt(2))), atol=1e-5)
    assert layer.get_config()["activation"] == "gelu"


def test_svp_dense_saved_with_relu_keeps_relu():
    # Configs always carry the activation, so a unit saved while ReLU was
    # the default comes back as ReLU, not as today's default.
    config = SVPDense(8, activation="relu", projection_dim=3).get_config()
    restored = SVPDense.from_config(config)
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], dtype="float32")
    h = ops.convert_to_numpy(restored(x))
    assert restored.activation is keras.activations.relu
    assert h.min() == 0.0


CONV_CASES = {
    "plain": (dict(), (2, 8, 8, 4), (256, 5)),
    "pool": (dict(pool_size=2), (2, 4, 4, 4), (64, 5)),
    "projection_pool": (dict(projection_pool_size=2), (2, 8, 8, 4), (64, 5)),
    "both_pools": (
        dict(pool_size=2, projection_pool_size=(2, 2)),
        (2, 4, 4, 4),
        (16, 5),
    ),
    "uneven_projection_pool": (
        dict(projection_pool_size=3, padding="valid", normalization="layer"),
        (2, 6, 6, 4),
        (16, 5),
    ),
    "strided_jl": (
        dict(strides=2, projection_scale="jl", normalization=None),
        (2, 4, 4, 4),
        (64, 5),
    ),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_svp_conv2d(case, tmp_path):
    kwargs, output_shape, projection_shape = CONV_CASES[case]
    run_layer_test(
        unit_factory(
            SVPConv2D, filters=4, kernel_size=3, projection_dim=5, seed=3, **kwargs
        ),
        (2, 8, 8, 3),
        output_shape,
        projection_shape,
        tmp_path,
    )


@pytest.mark.parametrize(
    "reduction, projection_shape",
    [("flatten", (80, 5)), ("mean", (16, 5)), ("cls", (16, 5))],
)
def test_svp_block_sequence(reduction, projection_shape, tmp_path):
    run_layer_test(
        block_factory(reduction),
        (2, 5, 8),
        (2, 5, 16),
        projection_shape,
        tmp_path,
    )


def test_svp_block_feature_map_mean(tmp_path):
    def make_layer(dtype=None, dropout=None):
        config = {"projection_dim": 4, "seed": 2, "projection_dropout": 0.1}
        if dtype is not None:
            config["dtype"] = dtype
        if dropout is not None:
            config["projection_dropout"] = dropout
        layers = [
            keras.layers.Conv2D(6, 3, padding="same", dtype=dtype),
            keras.layers.BatchNormalization(dtype=dtype),
            keras.layers.ReLU(dtype=dtype),
            keras.layers.Dropout(0.5, dtype=dtype),
        ]
        return SVPBlock(layers, reduction="mean", **config)

    run_layer_test(make_layer, (2, 6, 6, 3), (2, 6, 6, 6), (6, 4), tmp_path)


PROJECTION_CASES = {
    "flat": (dict(projection_dim=4, seed=3), (3, 10), (10, 4)),
    "flatten_map": (dict(projection_dim=4, seed=3), (2, 4, 4, 3), (48, 4)),
    "mean": (dict(projection_dim=4, reduction="mean", seed=3), (2, 5, 6), (6, 4)),
    "cls": (dict(projection_dim=2, reduction="cls", seed=3), (2, 5, 6), (6, 2)),
    "pool": (dict(projection_dim=4, pool_size=2, seed=3), (2, 8, 8, 3), (48, 4)),
    "jl_no_dropout": (
        dict(projection_dim=4, scale="jl", dropout=0.0, seed=3),
        (3, 10),
        (10, 4),
    ),
    "unseeded": (dict(projection_dim=4), (3, 10), (10, 4)),
}


@pytest.mark.parametrize("case", sorted(PROJECTION_CASES))
def test_random_projection(case, tmp_path):
    kwargs, input_shape, projection_shape = PROJECTION_CASES[case]
    run_layer_test(
        projection_factory(**kwargs),
        input_shape,
        input_shape,  # The "activation" of a bare projection is its input.
        projection_shape,
        tmp_path,
    )


# --------------------------------------------------------------------------
# The projection is the same on every backend.


def test_projection_matrix_golden_values():
    np.testing.assert_array_equal(projection_matrix(6, 3, seed=123), GOLDEN_FAN_IN)
    np.testing.assert_array_equal(
        projection_matrix(6, 3, seed=123, scale="jl"), GOLDEN_JL
    )


def built_projection(layer):
    return ops.convert_to_numpy(layer.projection.kernel)


def test_built_projection_matches_golden_values():
    for make_layer, input_shape in [
        (lambda: SVPDense(6, projection_dim=3, seed=123), (2, 4)),
        (
            lambda: SVPBlock(
                [keras.layers.Dense(6)], reduction="mean", projection_dim=3, seed=123
            ),
            (2, 5, 4),
        ),
        (
            lambda: SVPConv2D(
                6, 1, pool_size=2, projection_pool_size=2, projection_dim=3, seed=123
            ),
            (2, 4, 4, 1),
        ),
    ]:
        layer = make_layer()
        layer.build(input_shape)
        np.testing.assert_array_equal(built_projection(layer), GOLDEN_FAN_IN)
        # Built by a real call, on this backend's tensors.
        layer = make_layer()
        layer(np.random.default_rng(0).normal(size=input_shape).astype("float32"))
        np.testing.assert_array_equal(built_projection(layer), GOLDEN_FAN_IN)


def test_random_projection_matches_golden_values():
    projection = RandomProjection(3, seed=123, dropout=0.0)
    h = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    z = ops.convert_to_numpy(projection(h))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(projection.kernel), GOLDEN_FAN_IN
    )
    np.testing.assert_allclose(z, h.astype("float64") @ GOLDEN_FAN_IN, rtol=1e-5)
    jl = RandomProjection(3, seed=123, scale="jl")
    jl.build((None, 6))
    np.testing.assert_array_equal(ops.convert_to_numpy(jl.kernel), GOLDEN_JL)


def test_same_seed_same_projection_different_seed_different():
    a = SVPDense(8, projection_dim=4, seed=9)
    b = SVPDense(8, projection_dim=4, seed=9)
    c = SVPDense(8, projection_dim=4, seed=10)
    for layer in (a, b, c):
        layer.build((None, 3))
    np.testing.assert_array_equal(built_projection(a), built_projection(b))
    assert not np.allclose(built_projection(a), built_projection(c))


def test_unseeded_projection_follows_set_random_seed():
    keras.utils.set_random_seed(42)
    a = SVPDense(8, projection_dim=4)
    keras.utils.set_random_seed(42)
    b = SVPDense(8, projection_dim=4)
    assert a.seed == b.seed
    c = SVPDense(8, projection_dim=4)
    assert c.seed != b.seed


def test_projection_is_not_trained():
    layer = SVPDense(8, projection_dim=4, seed=1)
    layer.build((None, 3))
    trainable = {id(w) for w in layer.trainable_weights}
    assert id(layer.projection.kernel) not in trainable
    assert len(layer.trainable_weights) == 4  # Dense kernel, bias; LN gamma, beta.


# --------------------------------------------------------------------------
# Validation errors. The cases loop inside the tests rather than being
# parametrized: every test pays a fixed teardown (`clear_session()` in
# conftest).


def test_bad_projection_dim():
    for projection_dim in [0, -3, 2.5, "3", True, 4.0]:
        with pytest.raises(ValueError, match="projection_dim"):
            SVPDense(4, projection_dim=projection_dim)
        with pytest.raises(ValueError, match="projection_dim"):
            SVPBlock([keras.layers.Dense(3)], projection_dim=projection_dim)
        with pytest.raises(ValueError, match="projection_dim"):
            RandomProjection(projection_dim)


def test_numpy_integer_projection_dim_is_accepted():
    layer = SVPDense(4, projection_dim=np.int64(3), seed=0)
    layer.build((None, 2))
    assert layer.projection.kernel.shape == (4, 3)


def test_bad_projection_dropout():
    for dropout in [-0.1, 1.0, 1.5]:
        with pytest.raises(ValueError, match="projection_dropout"):
            SVPDense(4, projection_dim=3, projection_dropout=dropout)
        with pytest.raises(ValueError, match="projection_dropout"):
            SVPConv2D(4, 3, projection_dim=3, projection_dropout=dropout)
        with pytest.raises(ValueError, match="projection_dropout"):
            RandomProjection(3, dropout=dropout)


def test_bad_projection_scale():
    for scale in ["glorot", None, "JL", 1.0]:
        with pytest.raises(ValueError, match="projection_scale"):
            SVPDense(4, projection_dim=3, projection_scale=scale)
        with pytest.raises(ValueError, match="projection_scale"):
            RandomProjection(3, scale=scale)
        with pytest.raises(ValueError, match="projection_scale"):
            projection_matrix(4, 3, seed=0, scale=scale)


def test_svp_block_bad_layers():
    with pytest.raises(ValueError, match="at least one layer"):
        SVPBlock([], projection_dim=3)
    with pytest.raises(ValueError, match="at least one layer"):
        SVPBlock(None, projection_dim=3)
    with pytest.raises(TypeError, match="wraps Keras layers"):
        SVPBlock([keras.layers.Dense(3), lambda x: x], projection_dim=3)


def test_bad_reduction():
    for reduction in ["max", "", None, "CLS"]:
        with pytest.raises(ValueError, match="reduction"):
            SVPBlock([keras.layers.Dense(4)], reduction=reduction, projection_dim=3)
        with pytest.raises(ValueError, match="reduction"):
            RandomProjection(3, reduction=reduction)


def test_cls_reduction_on_feature_map():
    # Fails when the layer is built, not at its first training step.
    block = SVPBlock(
        [keras.layers.Conv2D(4, 3, padding="same")], reduction="cls", projection_dim=3
    )
    with pytest.raises(ValueError, match="cls"):
        block.build((2, 6, 6, 3))
    with pytest.raises(ValueError, match="cls"):
        RandomProjection(3, reduction="cls").build((2, 6, 6, 3))
    with pytest.raises(ValueError, match="cls"):
        RandomProjection(3, reduction="cls")(np.zeros((2, 6, 6, 3), "float32"))


def test_projection_project_needs_a_built_layer():
    projection = RandomProjection(3, seed=5)
    x = np.ones((2, 4), "float32")
    with pytest.raises(ValueError, match="not built"):
        projection.project(x)
    # Calling the layer builds it; project() then gives what the call gives.
    z = ops.convert_to_numpy(projection(x))
    np.testing.assert_array_equal(ops.convert_to_numpy(projection.project(x)), z)


def test_projection_matrix_is_the_kernel_drawn_again():
    projection = RandomProjection(3, seed=5)
    with pytest.raises(ValueError, match="not built"):
        projection.matrix()
    projection.build((None, 4))
    np.testing.assert_array_equal(
        projection.matrix(), ops.convert_to_numpy(projection.kernel)
    )


def test_svp_conv2d_rejects_2d_input():
    layer = SVPConv2D(4, 3, projection_dim=3)
    with pytest.raises(ValueError, match="ndim=4"):
        layer(np.zeros((2, 5), "float32"))


def test_projection_pool_size_needs_feature_map():
    with pytest.raises(ValueError, match="pool_size"):
        RandomProjection(3, pool_size=2).build((2, 5, 6))


def test_projection_pool_size_larger_than_the_map_is_rejected():
    # A 1x1 map pooled 2x2 would leave a zero-width projection.
    layer = SVPConv2D(
        4, 3, pool_size=2, projection_pool_size=2, projection_dim=3, name="late"
    )
    with pytest.raises(ValueError, match="unit 'late'.*larger than the 1x1"):
        layer.build((None, 3, 3, 2))
    with pytest.raises(ValueError, match="smaller projection_pool_size"):
        RandomProjection(3, pool_size=(1, 3)).build((2, 4, 2, 5))


def test_flatten_needs_known_shape():
    with pytest.raises(ValueError, match="flatten"):
        SVPBlock([keras.layers.Dense(4)], projection_dim=3).build((None, None, 6))
    # "mean" copes with a variable number of tokens.
    block = SVPBlock([keras.layers.Dense(4)], reduction="mean", projection_dim=3)
    block.build((None, None, 6))
    assert block.projection.kernel.shape == (4, 3)


def test_standalone_layer_without_projection_dim():
    for make_layer, input_shape in [
        (lambda: SVPDense(4), (2, 3)),
        (lambda: SVPConv2D(4, 3), (2, 6, 6, 3)),
        (lambda: SVPBlock([keras.layers.Dense(4)]), (2, 3)),
    ]:
        layer = make_layer()
        assert layer.projection_dim is None
        with pytest.raises(ValueError, match="projection_dim=None"):
            layer(np.zeros(input_shape, "float32"))
        with pytest.raises(ValueError, match="projection_dim=<number of classes>"):
            make_layer().build(input_shape)


def test_other_validation():
    for kwargs, match in [
        (dict(alignment_target="features"), "alignment_target"),
        (dict(alignment_weight=-1.0), "alignment_weight"),
        (dict(normalization="group"), "normalization"),
        (dict(units=0), "units"),
    ]:
        with pytest.raises(ValueError, match=match):
            SVPDense(**{"units": 4, "projection_dim": 3, **kwargs})


def test_public_api():
    for name in ("SVPDense", "SVPConv2D", "SVPBlock", "SVPUnit", "RandomProjection"):
        assert hasattr(keras_svp, name)
