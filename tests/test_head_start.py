"""The output head starting at the last unit's projection (`head_from_projection`)."""

import keras
import numpy as np
import pytest

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def cnn(head=None, mode="svp", last_unit=None, **kwargs):
    return keras_svp.SVPSequential(
        [
            keras_svp.SVPConv2D(4, 3, pool_size=2, name="unit_a"),
            last_unit or keras_svp.SVPConv2D(6, 3, pool_size=2, name="unit_b"),
            keras.layers.Flatten(),
            head or keras.layers.Dense(10, name="head"),
        ],
        mode=mode,
        **kwargs,
    )


def mlp(mode="svp", **kwargs):
    return keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(16, name="unit_a"),
            keras_svp.SVPDense(12, name="unit_b"),
            keras.layers.Dense(10, name="head"),
        ],
        mode=mode,
        **kwargs,
    )


def images(n=8):
    return np.random.default_rng(0).random((n, 12, 12, 1)).astype("float32")


def head_starts_at_projection(model):
    head = model.layer_chain()[-1]
    unit = model.get_layer("unit_b")
    return np.array_equal(numpy(head.kernel), numpy(unit.projection.kernel))


@pytest.mark.parametrize("build", [cnn, mlp], ids=["conv", "dense"])
def test_head_starts_as_the_last_units_projection(build):
    model = build()
    x = images() if build is cnn else images()[:, :, 0, 0]
    predictions = numpy(model(x))
    assert head_starts_at_projection(model)
    # Row for row: the head's first logits are the last unit's projection of
    # the same activation (the flattened map, in the projection's order), plus
    # the head's zero bias.
    h = x
    for layer in model.layer_chain()[:2]:
        h = layer(h)
    z = numpy(model.get_layer("unit_b").project(h))
    np.testing.assert_allclose(predictions, z, rtol=1e-5, atol=1e-5)


class Batches(keras.utils.PyDataset):
    """Batches whose shape Keras learns only from the first one."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return self.x[index * 4 : index * 4 + 4], self.y[index * 4 : index * 4 + 4]


def test_a_model_that_fit_builds_symbolically_starts_there_too():
    # Keras builds such a model symbolically (on TensorFlow, while it traces
    # the step), where no variable can be read or set: the head's
    # initializer does it. With a zero learning rate nothing moves after.
    model = cnn()
    model.compile(keras.optimizers.SGD(0.0), CE)
    model.fit(Batches(images(), np.arange(8) % 10), epochs=1, verbose=0)
    assert head_starts_at_projection(model)
    # The head's config keeps the initializer it was given, not R.
    config = model.layer_chain()[-1].get_config()["kernel_initializer"]
    assert config["class_name"] == "GlorotUniform"


def test_bp_mode_and_false_keep_the_heads_initializer():
    for model in (cnn(mode="bp"), cnn(head_from_projection=False)):
        model(images())
        assert not head_starts_at_projection(model)


# Factories: a layer built in one model would be "built before" the next.
@pytest.mark.parametrize(
    "variant, obstacle",
    [
        (
            lambda: {
                "head": keras.layers.EinsumDense("ab,bc->ac", (10,)),
                "num_classes": 10,
            },
            "not a keras.layers.Dense",
        ),
        (
            lambda: {
                "last_unit": keras_svp.SVPConv2D(
                    6, 3, pool_size=2, projection_dim=12, name="unit_b"
                )
            },
            "projection_dim=12",
        ),
        (
            lambda: {
                "last_unit": keras_svp.SVPConv2D(
                    6, 3, pool_size=2, projection_pool_size=3, name="unit_b"
                )
            },
            "pools its activation",
        ),
    ],
    ids=["einsum-head", "wider-projection", "projection-pooling"],
)
def test_auto_leaves_other_heads_and_true_says_why(variant, obstacle):
    model = cnn(**variant())
    model(images())
    head = model.layer_chain()[-1]
    kernel = numpy(model.get_layer("unit_b").projection.kernel)
    assert head.kernel.shape != kernel.shape or not np.array_equal(
        numpy(head.kernel), kernel
    )
    with pytest.raises(ValueError, match=obstacle) as error:
        cnn(**variant(), head_from_projection=True)(images())
    assert "head_from_projection" in str(error.value)


@pytest.mark.parametrize(
    "between, obstacle",
    [
        ([keras.layers.Activation("relu"), keras.layers.Flatten()], "Activation"),
        ([keras.layers.GlobalAveragePooling2D()], "reduced by 'flatten'"),
        ([], "the activation unreduced"),
    ],
    ids=["activation", "mean-of-a-flattened-projection", "no-flatten"],
)
def test_the_head_must_read_what_the_projection_reads(between, obstacle):
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPConv2D(4, 3, pool_size=2, name="unit_b"),
            *between,
            keras.layers.Dense(10, name="head"),
        ],
        num_classes=10,
        head_from_projection=True,
    )
    with pytest.raises(ValueError, match=obstacle):
        model(images())


def test_transformer_heads_start_at_the_class_or_mean_token_projection():
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    for reduction in ("cls", "mean"):
        model = keras_svp.applications.vit(
            input_shape=(8, 8, 1),
            patch_size=4,
            dim=8,
            depth=2,
            num_heads=2,
            reduction=reduction,
            head_from_projection=True,
        )
        unit = model.get_layer("unit_1")
        head = model.get_layer("head")
        np.testing.assert_array_equal(numpy(head.kernel), numpy(unit.projection.kernel))
        h = x
        for layer in model.layer_chain()[: model.layer_chain().index(unit) + 1]:
            h = layer(h)
        np.testing.assert_allclose(
            numpy(model(x)), numpy(unit.project(h)), rtol=1e-5, atol=1e-5
        )


def test_global_average_pooling_matches_a_mean_reduction():
    block = keras_svp.SVPBlock(
        [keras.layers.Conv2D(4, 3, padding="same")], reduction="mean", name="unit_b"
    )
    model = keras_svp.SVPSequential(
        [block, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)],
        head_from_projection=True,
    )
    model(images())
    assert head_starts_at_projection(model)


def test_a_head_built_before_the_model_keeps_its_weights():
    head = keras.layers.Dense(10, name="head")
    head.build((None, 3 * 3 * 6))
    kernel = numpy(head.kernel).copy()
    model = cnn(head=head)
    model(images())
    np.testing.assert_array_equal(numpy(head.kernel), kernel)
    with pytest.raises(ValueError, match="built before the model"):
        head = keras.layers.Dense(10)
        head.build((None, 3 * 3 * 6))
        cnn(head=head, head_from_projection=True)(images())


def test_building_again_leaves_the_trained_head():
    model = cnn(head_from_projection=True)
    model.build((None, 12, 12, 1))
    head = model.layer_chain()[-1]
    trained = np.ones(tuple(head.kernel.shape), "float32")
    head.kernel.assign(trained)
    model.build((None, 12, 12, 1))
    np.testing.assert_array_equal(numpy(head.kernel), trained)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_head_from_projection_rejects_other_values(value):
    with pytest.raises(ValueError, match="head_from_projection must be one of"):
        mlp(head_from_projection=value)


def test_saved_heads_come_back_trained_not_restarted(tmp_path):
    x = images(16)
    y = np.arange(16) % 10
    model = cnn()
    model.compile(keras.optimizers.Adam(1e-2), CE)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert not head_starts_at_projection(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.head_from_projection == "auto"
    np.testing.assert_array_equal(
        numpy(loaded.layer_chain()[-1].kernel), numpy(model.layer_chain()[-1].kernel)
    )
    np.testing.assert_allclose(
        numpy(loaded.predict(x, verbose=0)), numpy(model.predict(x, verbose=0)), 1e-5
    )
