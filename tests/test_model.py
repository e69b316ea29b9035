"""SVPSequential end to end: fit/evaluate/predict, logs, state, errors."""

import keras
import numpy as np
import pytest

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def mlp(mode="svp", width=32, **kwargs):
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(width, name="unit_a"),
            keras_svp.SVPDense(width, name="unit_b"),
            keras.layers.Dense(10, name="head"),
        ],
        mode=mode,
        **kwargs,
    )
    model.compile(keras.optimizers.Adam(1e-3), CE, metrics=["accuracy"])
    return model


def small_batch(n=32, d=64, classes=10):
    rng = np.random.default_rng(0)
    return rng.random((n, d)).astype("float32"), rng.integers(0, classes, n)


def projections(model):
    return [
        keras.ops.convert_to_numpy(layer.projection.kernel).copy()
        for layer in model.layer_chain()
        if isinstance(layer, keras_svp.SVPUnit)
    ]


def test_fit_logs_total_loss_head_metrics_and_per_unit_losses():
    x, y = small_batch()
    model = mlp()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
    keys = set(history.history)
    for name in ("unit_a", "unit_b"):
        assert f"{name}_prediction_loss" in keys
        assert f"{name}_alignment_loss" in keys
        assert f"val_{name}_prediction_loss" in keys
    assert {"loss", "head_loss", "accuracy", "val_loss", "val_accuracy"} <= keys
    # `loss` is the sum of every local loss and the head's loss.
    parts = (
        history.history["head_loss"][-1]
        + history.history["unit_a_prediction_loss"][-1]
        + history.history["unit_b_prediction_loss"][-1]
        + history.history["unit_b_alignment_loss"][-1]
    )
    assert history.history["loss"][-1] == pytest.approx(parts, rel=1e-4)
    # The first unit has no predecessor to align with (input_alignment=False).
    assert history.history["unit_a_alignment_loss"][-1] == 0.0
    assert history.history["unit_b_alignment_loss"][-1] > 0.0


def test_bp_mode_logs_only_the_compiled_loss_and_metrics():
    x, y = small_batch()
    history = mlp("bp").fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}


def test_evaluate_predict_and_callbacks():
    x, y = small_batch()
    model = mlp()
    seen = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(sorted(logs))
    )
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert len(seen) == 2 and "unit_a_prediction_loss" in seen[0]
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isfinite(results["loss"]) and 0 <= results["accuracy"] <= 1
    assert model.predict(x, verbose=0).shape == (32, 10)


def test_input_alignment_aligns_the_first_unit():
    x, y = small_batch()
    model = mlp(input_alignment=True)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert history.history["unit_a_alignment_loss"][-1] > 0.0
    assert model.input_projection.kernel.shape == (64, 10)
    assert not model.input_projection.trainable_weights


def test_projection_is_fixed_non_trainable_and_saved_exactly(tmp_path):
    x, y = small_batch()
    model = mlp()
    model.build((None, 64))
    before = projections(model)
    trainable = {id(w) for w in model.trainable_weights}
    for layer in model.layer_chain()[:2]:
        assert id(layer.projection.kernel) not in trainable
        assert not layer.projection.kernel.trainable
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for old, new in zip(before, projections(model)):
        np.testing.assert_array_equal(old, new)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras_svp.SVPSequential)
    assert loaded.mode == "svp" and loaded.num_classes == 10
    for old, new in zip(before, projections(loaded)):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_same_seed_gives_the_reference_projection_on_every_backend():
    layer = keras_svp.SVPDense(4, projection_dim=3, seed=2024)
    model = keras_svp.SVPSequential([layer, keras.layers.Dense(3)])
    model.build((None, 5))
    reference = keras_svp.projections.projection_matrix(4, 3, 2024)
    got = keras.ops.convert_to_numpy(layer.projection.kernel)
    np.testing.assert_array_equal(got, reference)
    # Golden values, the same whichever backend runs this test.
    np.testing.assert_allclose(
        got[0], np.array([0.5144284, 0.8209600, 0.5733598]), atol=1e-6
    )


def test_batchnorm_statistics_update_inside_svp_units(digits):
    (x, y), _ = digits
    x = x.reshape(-1, 8, 8, 1)[:64]
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPConv2D(4, 3, pool_size=2, name="conv_unit"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", CE)
    model.build((None, 8, 8, 1))
    norm = model.layer_chain()[0].norm
    mean_before = keras.ops.convert_to_numpy(norm.moving_mean).copy()
    var_before = keras.ops.convert_to_numpy(norm.moving_variance).copy()
    model.fit(x, y[:64], epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(norm.moving_mean), mean_before)
    assert not np.allclose(keras.ops.convert_to_numpy(norm.moving_variance), var_before)


def test_projection_dropout_draws_fresh_masks_each_step():
    layer = keras_svp.SVPDense(16, projection_dim=10, projection_dropout=0.5, seed=3)
    h = layer(np.ones((4, 8), "float32"))
    first = keras.ops.convert_to_numpy(layer.project(h, training=True))
    second = keras.ops.convert_to_numpy(layer.project(h, training=True))
    assert not np.allclose(first, second)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.project(h, training=False)),
        keras.ops.convert_to_numpy(h)
        @ keras.ops.convert_to_numpy(layer.projection.kernel),
        rtol=1e-5,
    )


def test_regularization_losses_join_their_units_loss():
    x, y = small_batch()
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(
                32, kernel_regularizer=keras.regularizers.L2(10.0), name="unit_a"
            ),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", CE)
    model.build((None, 64))
    loss, (_, _, prediction, _, value) = model.unit_forward(0, x, y, None, None, False)
    penalty = 10.0 * np.sum(
        keras.ops.convert_to_numpy(model.layer_chain()[0].dense.kernel) ** 2
    )
    assert float(loss) == pytest.approx(float(prediction) + penalty, rel=1e-4)
    assert float(value) == float(loss)  # they differ only under tf.distribute


# Errors -------------------------------------------------------------------


def test_labels_out_of_range_are_rejected():
    x, y = small_batch()
    with pytest.raises(ValueError, match=r"Labels must be class ids in \[0, 10\)"):
        mlp().fit(x, y + 5, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[-1, "):
        mlp().fit(x, y - 1, epochs=1, verbose=0)


def test_one_hot_width_must_match_num_classes():
    x, y = small_batch()
    with pytest.raises(ValueError, match="One-hot labels have 7 columns"):
        mlp().fit(x, np.eye(7)[y % 7], epochs=1, verbose=0)


def test_projection_smaller_than_num_classes_is_rejected():
    model = keras_svp.SVPSequential(
        [keras_svp.SVPDense(8, projection_dim=4), keras.layers.Dense(10)]
    )
    with pytest.raises(ValueError, match="projection_dim=4, fewer than num_classes=10"):
        model.build((None, 6))


def test_num_classes_must_match_the_head():
    model = keras_svp.SVPSequential(
        [keras_svp.SVPDense(8), keras.layers.Dense(10)], num_classes=5
    )
    with pytest.raises(
        ValueError, match="outputs 10 values per sample but num_classes=5"
    ):
        model.build((None, 6))


def test_input_of_the_wrong_rank_is_rejected():
    x, y = small_batch()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="built for inputs of shape"):
        model.fit(x.reshape(32, 8, 8), y, epochs=1, verbose=0)


def test_model_without_svp_unit_is_rejected():
    model = keras_svp.SVPSequential([keras.layers.Dense(8), keras.layers.Dense(10)])
    model.compile("adam", CE)
    x, y = small_batch()
    with pytest.raises(ValueError, match="needs at least one SVP unit"):
        model.fit(x, y, epochs=1, verbose=0)


def test_trainable_layer_between_last_unit_and_head_is_rejected():
    model = keras_svp.SVPSequential(
        [keras_svp.SVPDense(8), keras.layers.Dense(8), keras.layers.Dense(10)]
    )
    with pytest.raises(ValueError, match="Only one trainable layer"):
        model.build((None, 6))


def test_svp_mode_needs_a_compiled_loss_and_a_valid_mode():
    with pytest.raises(ValueError, match="pass loss="):
        keras_svp.SVPSequential(
            [keras_svp.SVPDense(8), keras.layers.Dense(10)]
        ).compile("adam")
    with pytest.raises(ValueError, match="mode must be one of"):
        keras_svp.SVPSequential([keras_svp.SVPDense(8)], mode="backprop")


def test_sample_weights_weight_the_head_and_prediction_losses():
    x, y = small_batch(16)
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(8, name="unit_a"),
            keras_svp.SVPDense(8, name="unit_b"),
            keras.layers.Dense(10, name="head"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), CE)
    model.build((None, 64))
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.train_on_batch(x, y, sample_weight=np.zeros(16, "float32"))
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    changed = {
        w.path.split("/")[1]
        for w, a, b in zip(model.trainable_weights, after, before)
        if not np.array_equal(a, b)
    }
    # Zero weights silence every prediction loss and the head; only the
    # (unweighted) alignment loss of the second unit still moves it.
    assert changed == {"unit_b"}


class TwoUnitNet(keras_svp.SVPModel):
    """A subclassed SVPModel: its chain is its layers in assignment order."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.unit_1 = keras_svp.SVPDense(32)
        self.unit_2 = keras_svp.SVPDense(32)
        self.head = keras.layers.Dense(10)

    def call(self, inputs, training=None):
        x = self.flatten(inputs)
        x = self.unit_1(x, training=training)
        x = self.unit_2(x, training=training)
        return self.head(x)


def test_subclassed_svp_model_trains_unit_by_unit(digits):
    (x, y), (x_test, y_test) = digits
    model = TwoUnitNet()
    model.compile(keras.optimizers.Adam(3e-3), CE, metrics=["accuracy"])
    history = model.fit(x.reshape(-1, 8, 8), y, epochs=5, batch_size=64, verbose=0)
    assert model.layer_chain() == [
        model.flatten,
        model.unit_1,
        model.unit_2,
        model.head,
    ]
    assert f"{model.unit_2.name}_alignment_loss" in history.history
    accuracy = np.mean(
        np.argmax(model.predict(x_test.reshape(-1, 8, 8), verbose=0), 1) == y_test
    )
    assert accuracy > 0.8


def test_tf_data_input_and_steps_per_execution():
    import tensorflow as tf

    x, y = small_batch(64)
    model = keras_svp.SVPSequential([keras_svp.SVPDense(16), keras.layers.Dense(10)])
    # Keras' PyTorch trainer runs one step per execution only.
    steps = 1 if keras.backend.backend() == "torch" else 2
    model.compile(keras.optimizers.Adam(), CE, steps_per_execution=steps)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(dataset, epochs=2, verbose=0, validation_data=dataset)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 16
    assert "val_svp_dense_prediction_loss" in history.history


class CountedSVPSequential(keras_svp.SVPSequential):
    """Counts how often the training step's Python body runs."""

    runs = 0

    def train_step(self, *args):  # JAX passes (state, data)
        type(self).runs += 1
        return super().train_step(*args)


@pytest.mark.parametrize("mode", ["svp", "bp"])
@pytest.mark.parametrize("call", ["fit", "train_on_batch"])
def test_compiled_step_is_traced_once(mode, call):
    # A step that creates the optimizer's or metrics' variables while it is
    # traced gets traced twice on TensorFlow (a slower first step).
    x, y = small_batch(24)
    model = CountedSVPSequential(
        [keras_svp.SVPDense(16), keras.layers.Dense(10)], mode=mode
    )
    model.compile(keras.optimizers.Adam(), CE, metrics=["accuracy"])
    CountedSVPSequential.runs = 0
    if call == "fit":
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    else:
        for start in (0, 8, 16):
            model.train_on_batch(x[start : start + 8], y[start : start + 8])
    eager = keras.backend.backend() == "torch"
    assert CountedSVPSequential.runs == (3 if eager else 1)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF's XLA option")
def test_tensorflow_xla_step_trains_as_the_graph_step(digits):
    # Under XLA each unit reads its weights through a StatelessScope (tied
    # to the previous unit's update); its gradients, regularizer, BatchNorm
    # statistics and random seeds must come out as in graph mode.
    (x, y), _ = digits
    x, y = x.reshape(-1, 8, 8, 1)[:48], y[:48]

    def trained(jit_compile, projection_dropout):
        keras.utils.set_random_seed(0)
        model = keras_svp.SVPSequential(
            [
                keras_svp.SVPConv2D(4, 3, seed=1, name="conv_a"),
                keras_svp.SVPConv2D(
                    4,
                    3,
                    pool_size=2,
                    projection_dropout=projection_dropout,
                    kernel_regularizer=keras.regularizers.L2(0.1),
                    seed=2,
                    name="conv_b",
                ),
                keras.layers.Flatten(),
                keras.layers.Dense(10),
            ]
        )
        # SGD: Adam would blow the rounding noise in the gradients of the
        # convolutions' biases (which BatchNorm cancels) up to full steps.
        model.compile(keras.optimizers.SGD(0.1), CE, jit_compile=jit_compile)
        model.build((None, 8, 8, 1))
        before = seed_states(model)
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
        return model, before

    def seed_states(model):
        return [
            keras.ops.convert_to_numpy(v).copy()
            for v in model.non_trainable_variables
            if "seed_generator_state" in v.path
        ]

    (graph, _), (xla, _) = trained(False, 0.0), trained(True, 0.0)
    assert len(graph.weights) == len(xla.weights) == 16
    for want, got in zip(graph.get_weights(), xla.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # XLA draws other dropout masks than TF's kernels, so with dropout only
    # the seeds' states can be compared: each advanced the same way.
    (graph, before), (xla, _) = trained(False, 0.5), trained(True, 0.5)
    assert len(before) == 2
    for want, got in zip(seed_states(graph), seed_states(xla)):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(seed_states(xla)[1], before[1])  # conv_b's


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch.compile")
def test_torch_compiled_step_trains_as_the_eager_step(digits):
    # `jit_compile=True` on PyTorch runs the step through torch.compile,
    # whose graph breaks at each unit's `backward()`: every unit must still
    # get its own gradients and update, as in the eager step, and the
    # compiled test step must report the same losses.
    (x, y), _ = digits
    x, y = x[:48], y[:48]

    def trained(jit_compile):
        keras.utils.set_random_seed(0)
        model = keras_svp.SVPSequential(
            [
                keras_svp.SVPDense(16, seed=1, name="unit_a"),
                keras_svp.SVPDense(16, seed=2, name="unit_b"),
                keras.layers.Dense(10),
            ]
        )
        model.compile(keras.optimizers.SGD(0.1), CE, jit_compile=jit_compile)
        model.build((None, 64))
        before = trainable_values(model)
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
        assert model.jit_compile is jit_compile
        logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        return before, trainable_values(model), logs

    def trainable_values(model):
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]

    (start, eager, eager_logs), (_, compiled, compiled_logs) = (
        trained(False),
        trained(True),
    )
    assert len(eager) == len(compiled) == 10  # 2 units x 4, the head's 2
    for initial, want, got in zip(start, eager, compiled):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        assert not np.allclose(want, initial)
    # The compiled test step reports every unit's losses as the eager one.
    assert sorted(compiled_logs) == sorted(eager_logs)
    assert sorted(eager_logs) == [
        "head_loss",
        "loss",
        "unit_a_alignment_loss",
        "unit_a_prediction_loss",
        "unit_b_alignment_loss",
        "unit_b_prediction_loss",
    ]
    for name, value in eager_logs.items():
        assert compiled_logs[name] == pytest.approx(value, rel=1e-4), name
