"""keras_svp.applications: structure, the ViT layers through the harness,
saving, and learning on digits."""

import keras
import numpy as np
import pytest
from layer_harness import run_layer_test
from layer_harness import to_numpy

import keras_svp
from keras_svp import applications
from keras_svp.applications import ClassToken
from keras_svp.applications import PatchEmbedding
from keras_svp.applications import TokenPooling
from keras_svp.applications import TransformerBlock
from keras_svp.benchmarks import models as benchmark_models

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _units(model):
    return [layer for layer in model.layers if isinstance(layer, keras_svp.SVPUnit)]


# The ViT layers ---------------------------------------------------------------


def _vit_stem_factory(reduction):
    """Patches, class token and a transformer block in one SVP unit."""

    def make_layer(dtype=None, dropout=None):
        options = {"projection_dim": 5, "seed": 4}
        if dtype is not None:
            options["dtype"] = dtype
        if dropout is not None:
            options["projection_dropout"] = dropout
        layers = [PatchEmbedding(4, 16, dtype=dtype)]
        if reduction == "cls":
            layers.append(ClassToken(dtype=dtype))
        layers.append(TransformerBlock(16, 2, mlp_ratio=1.5, dtype=dtype))
        return keras_svp.SVPBlock(layers, reduction=reduction, **options)

    return make_layer


@pytest.mark.parametrize(
    "reduction, tokens", [("cls", 5), ("mean", 4)], ids=["cls", "mean"]
)
def test_vit_layers_in_svp_block_harness(reduction, tokens, tmp_path):
    run_layer_test(
        _vit_stem_factory(reduction),
        (2, 8, 9, 3),  # 2 x 2 patches of 4 pixels; the 9th column is dropped
        (2, tokens, 16),
        (16, 5),
        tmp_path,
    )


@pytest.mark.parametrize(
    "layer",
    [
        PatchEmbedding(2, 8, name="patches"),
        ClassToken(name="token"),
        TransformerBlock(8, 4, mlp_ratio=3.0, dropout=0.1, name="block"),
        TokenPooling("mean", name="pool"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_vit_layer_config_round_trip(layer):
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype("float32")
    if not isinstance(layer, PatchEmbedding):
        x = x.reshape(2, 16, 8)
    out = layer(x)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x)), to_numpy(out))
    assert tuple(layer.compute_output_shape(x.shape)) == tuple(out.shape)


def test_vit_layer_values():
    tokens = np.arange(24, dtype="float32").reshape(2, 3, 4)
    token = ClassToken()
    out = to_numpy(token(tokens))
    np.testing.assert_array_equal(out[:, 1:], tokens)
    np.testing.assert_array_equal(out[0, 0], out[1, 0])
    np.testing.assert_array_equal(out[0, 0], to_numpy(token.token)[0, 0])
    np.testing.assert_array_equal(to_numpy(TokenPooling("cls")(tokens)), tokens[:, 0])
    np.testing.assert_allclose(
        to_numpy(TokenPooling("mean")(tokens)), tokens.mean(axis=1)
    )
    # Patches: a 1x1 "convolution" per patch, plus the position embedding.
    patches = PatchEmbedding(2, 3)
    images = np.random.default_rng(0).normal(size=(1, 4, 4, 2)).astype("float32")
    out = to_numpy(patches(images))
    kernel, bias = (to_numpy(w) for w in patches.projection.weights)
    position = to_numpy(patches.position_embedding)
    expected = np.einsum("hwc,hwcd->d", images[0, 2:4, 0:2], kernel) + bias
    np.testing.assert_allclose(out[0, 2], expected + position[2], rtol=1e-5, atol=1e-5)


def test_vit_layer_errors():
    with pytest.raises(ValueError, match="must divide dim"):
        TransformerBlock(10, 3)
    with pytest.raises(ValueError, match="smaller than one"):
        PatchEmbedding(8, 4).build((None, 4, 4, 1))
    with pytest.raises(ValueError, match="make dim match"):
        TransformerBlock(8, 2).build((None, 3, 6))
    with pytest.raises(ValueError, match="'cls' or 'mean'"):
        TokenPooling("flatten")


# Builders ----------------------------------------------------------------------


def test_mlp_structure_and_bp_mode():
    model = applications.mlp(num_classes=7, depth=2, width=24, input_shape=(8, 8, 1))
    assert [unit.units for unit in _units(model)] == [24, 24]
    assert model.mode == "svp" and model.layers[-1].units == 7
    bp = applications.mlp(depth=1, width=8, mode="bp", flatten=False)
    assert bp.mode == "bp" and not isinstance(bp.layers[0], keras.layers.Flatten)
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        applications.mlp(depth=0)


def _sequential_head_layers(model):
    """The class names of the layers of `model`'s `keras.Sequential` head."""
    head = model.layers[-1]
    assert isinstance(head, keras.Sequential) and head.name == "head"
    return [type(layer).__name__ for layer in head.layers]


def test_mlp_head_layers():
    model = applications.mlp(
        depth=3, width=16, input_shape=(8, 8, 1), head_layers=1, projection_dim=12
    )
    assert [unit.units for unit in _units(model)] == [16, 16]
    head = model.layers[-1]
    assert _sequential_head_layers(model) == [
        "Dense",
        "LayerNormalization",
        "Activation",
        "Dense",
    ]
    assert [head.layers[0].units, head.layers[-1].units] == [16, 10]
    # The head's layers are trained by the compiled loss, nothing else.
    assert len(model.head_weights) == len(head.trainable_weights) == 6
    # In BP it is the same network as one unit per hidden layer.
    per_layer = applications.mlp(depth=3, width=16, input_shape=(8, 8, 1))
    assert sorted(tuple(w.shape) for w in model.trainable_weights) == sorted(
        tuple(w.shape) for w in per_layer.trainable_weights
    )
    # With the same weights, the head's hidden layer computes what the unit
    # does.
    unit = _units(per_layer)[-1]
    dense, norm, activation = head.layers[:3]
    for source, target in zip(
        unit.dense.weights + unit.norm.weights, dense.weights + norm.weights
    ):
        target.assign(source)
    h = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(activation(norm(dense(h)))), to_numpy(unit(h)), atol=1e-5
    )
    # The units' body options reach the head's layers; SVP options do not.
    relu = applications.mlp(
        depth=2, width=8, head_layers=1, activation="relu", normalization="batch"
    )
    assert [type(layer).__name__ for layer in relu.layers[-1].layers[:3]] == [
        "Dense",
        "BatchNormalization",
        "Activation",
    ]
    assert relu.layers[-1].layers[2].activation is keras.activations.relu
    with pytest.raises(ValueError, match="leaves no SVP unit"):
        applications.mlp(depth=2, head_layers=2)
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError, match="head_layers must be"):
            applications.mlp(depth=2, head_layers=bad)


@pytest.mark.parametrize(
    "input_shape, pools",
    [((32, 32, 3), [2, 2, None, 2, None, 2, None, 2]), ((28, 28, 1), None)],
)
def test_vgg11_structure(input_shape, pools):
    model = applications.vgg11(input_shape=input_shape, width_multiplier=0.125)
    units = _units(model)
    assert [unit.filters for unit in units] == [8, 16, 32, 32, 64, 64, 64, 64]
    pooled = [unit.pool_size for unit in units]
    if pools is not None:
        assert pooled == pools
    else:  # 28 -> 14 -> 7 -> 3 -> 1: the fifth pooling does not fit.
        assert sum(p is not None for p in pooled) == 4 and pooled[-1] is None
    assert all(unit.normalization == "batch" for unit in units)
    assert tuple(model.compute_output_shape((2, *input_shape))) == (2, 10)


def test_vgg_stage_units():
    model = applications.vgg11(
        input_shape=(28, 28, 1), width_multiplier=0.125, units="stage"
    )
    units = _units(model)
    # Stages end at the poolings: [8 M] [16 M] [32 32 M] [64 64 M] [64 64].
    assert [(u.filters, u.pool_size) for u in units] == [
        (8, 2),
        (16, 2),
        (32, 2),
        (64, 2),
        (64, None),
    ]
    plain = [
        layer
        for layer in model.layers
        if type(layer) is keras.layers.Conv2D  # not the units' own
    ]
    assert [layer.filters for layer in plain] == [32, 64, 64]
    # In BP it is the same network as one unit per convolution.
    per_conv = applications.vgg11(input_shape=(28, 28, 1), width_multiplier=0.125)

    def shapes(m):
        return sorted(tuple(w.shape) for w in m.trainable_weights)

    assert shapes(model) == shapes(per_conv)
    assert tuple(model.compute_output_shape((2, 28, 28, 1))) == (2, 10)
    # A stage's plain convolutions take the units' body options.
    model = applications.vgg(
        (4, 4, "M"),
        input_shape=(8, 8, 1),
        units="stage",
        normalization="layer",
        activation="gelu",
    )
    plain = model.layers[:3]
    assert [type(layer).__name__ for layer in plain] == [
        "Conv2D",
        "LayerNormalization",
        "Activation",
    ]
    assert plain[2].activation is keras.activations.gelu
    assert model.layers[3].normalization == "layer"
    with pytest.raises(ValueError, match="units must be one of"):
        applications.vgg11(units="block")


def test_vgg_options_and_errors():
    model = applications.vgg(
        (4, "M", 8), input_shape=(8, 8, 1), classifier_units=(16,), mode="bp"
    )
    assert [type(unit).__name__ for unit in _units(model)] == [
        "SVPConv2D",
        "SVPConv2D",
        "SVPDense",
    ]
    with pytest.raises(ValueError, match="start with a filter count"):
        applications.vgg(("M", 4), input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="width_multiplier"):
        applications.vgg11(width_multiplier=0)
    with pytest.raises(ValueError, match="height, width, channels"):
        applications.vgg11(input_shape=(32, 32))


def test_vgg_head_convolutions():
    model = applications.vgg(
        (4, "M", 8, "M", 16, "M"), input_shape=(8, 8, 1), head_convolutions=1
    )
    assert [(u.filters, u.pool_size) for u in _units(model)] == [(4, 2), (8, 2)]
    head = model.layers[-1]
    assert _sequential_head_layers(model) == [
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    # The head's layers are trained by the compiled loss, nothing else.
    assert len(model.head_weights) == len(head.trainable_weights) == 6
    assert model.num_classes == 10
    # In BP it is the same network as one unit per convolution.
    per_conv = applications.vgg((4, "M", 8, "M", 16, "M"), input_shape=(8, 8, 1))
    for m in (model, per_conv):
        assert tuple(m.compute_output_shape((2, 8, 8, 1))) == (2, 10)
    assert sorted(tuple(w.shape) for w in model.trainable_weights) == sorted(
        tuple(w.shape) for w in per_conv.trainable_weights
    )
    with pytest.raises(ValueError, match="leaves no SVP unit"):
        applications.vgg((4, "M", 8), input_shape=(8, 8, 1), head_convolutions=2)
    with pytest.raises(ValueError, match="cannot be combined"):
        applications.vgg(
            (4, 8), input_shape=(8, 8, 1), head_convolutions=1, classifier_units=(8,)
        )
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError, match="head_convolutions must be"):
            applications.vgg((4, 8), input_shape=(8, 8, 1), head_convolutions=bad)


def test_vgg_convolution_head_trains_and_saves(tmp_path):
    """The head's convolution learns from the compiled loss, its BatchNorm
    statistics move, and the model saves and loads."""
    model = applications.vgg(
        (4, "M", 8), input_shape=(8, 8, 1), head_convolutions=1, seed=0
    )
    model.compile(keras.optimizers.Adam(1e-2), CE)
    head = model.layers[-1]
    kernel, norm = head.layers[0].kernel, head.layers[1]
    before = to_numpy(kernel).copy()
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 32)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(to_numpy(kernel), before)
    assert np.abs(to_numpy(norm.moving_mean)).max() > 0
    path = str(tmp_path / "vgg.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )


def test_mlp_dense_head_trains_and_saves(tmp_path):
    """The head's hidden layer learns, and the model saves and loads."""
    model = applications.mlp(depth=2, width=8, head_layers=1, flatten=False, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), CE)
    rng = np.random.default_rng(0)
    x = rng.random((32, 6)).astype("float32")
    y = rng.integers(0, 10, 32)
    model.build(x.shape)
    kernel = model.layers[-1].layers[0].kernel
    before = to_numpy(kernel).copy()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(to_numpy(kernel), before)
    path = str(tmp_path / "mlp.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )


def test_benchmark_cnn_is_the_small_vgg():
    model = benchmark_models.build_cnn("svp")
    units = _units(model)
    assert [(u.filters, u.pool_size) for u in units] == [(32, 2), (64, 2), (128, 2)]


@pytest.mark.parametrize("blocks_per_unit, units", [(1, 4), (2, 2), (4, 1)])
def test_vit_groups_blocks_into_units(blocks_per_unit, units):
    model = applications.vit(
        dim=8, depth=4, num_heads=2, blocks_per_unit=blocks_per_unit, reduction="mean"
    )
    svp_units = _units(model)
    assert len(svp_units) == units
    for unit in svp_units:
        blocks = [b for b in unit.block_layers if isinstance(b, TransformerBlock)]
        assert len(blocks) == blocks_per_unit and unit.reduction == "mean"
    # Mean reduction needs no class token; the last unit ends normalized.
    assert not any(isinstance(layer, ClassToken) for layer in model.layers)
    assert type(svp_units[-1].block_layers[-1]).__name__ == "LayerNormalization"


def test_vit_errors():
    with pytest.raises(ValueError, match="must divide depth"):
        applications.vit(depth=6, blocks_per_unit=4)
    with pytest.raises(ValueError, match="'cls' or 'mean'"):
        applications.vit(reduction="flatten")


def test_vit_saves_and_loads(tmp_path):
    model = applications.vit(
        dim=8, depth=2, num_heads=2, patch_size=4, input_shape=(8, 8, 1)
    )
    model.compile("adam", CE)
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype("float32")
    path = str(tmp_path / "vit.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


# Learning ------------------------------------------------------------------------


def _fit_and_score(model, digits, epochs, lr=3e-3, batch_size=64):
    (x_train, y_train), (x_test, y_test) = digits
    x_train, x_test = x_train.reshape(-1, 8, 8, 1), x_test.reshape(-1, 8, 8, 1)
    model.compile(keras.optimizers.Adam(lr), CE, metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(model.predict(x_test, verbose=0), 1) == y_test))


@pytest.mark.parametrize("mode", ["svp", "bp"])
def test_vit_learns_digits(digits, mode):
    model = applications.vit(
        dim=32, depth=2, num_heads=4, patch_size=2, mode=mode, reduction="cls"
    )
    assert _fit_and_score(model, digits, epochs=6) >= 0.7


@pytest.mark.parametrize(
    "config, units",
    [((16, "M", 32, "M"), "convolution"), ((16, 16, "M", 32, "M"), "stage")],
)
@pytest.mark.parametrize("head_convolutions", [0, 1])
def test_vgg_learns_digits(digits, config, units, head_convolutions):
    # Layer normalization: under SVP, BatchNorm's moving statistics need
    # some 250 steps of batch 16 to settle (the units keep moving), more
    # than this test affords.
    model = applications.vgg(
        config,
        input_shape=(8, 8, 1),
        normalization="layer",
        units=units,
        head_convolutions=head_convolutions,
    )
    assert _fit_and_score(model, digits, epochs=4, batch_size=32) >= 0.8
