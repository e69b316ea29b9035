"""One Keras optimizer serves every unit: schedules, clipping, loss scaling."""

import keras
import numpy as np
import pytest

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def model_with(optimizer, width=16):
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(width, projection_dropout=0.0),
            keras_svp.SVPDense(width, projection_dropout=0.0),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer, CE, metrics=["accuracy"])
    model.build((None, 64))
    return model


def weights(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]


def test_learning_rate_schedule_follows_the_step_count(digits):
    (x, y), _ = digits
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 1, 0.5)
    model = model_with(keras.optimizers.SGD(schedule))
    model.fit(x[:64], y[:64], batch_size=16, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        0.01 * 0.5**4,
        rtol=1e-5,
    )


def test_global_clipnorm_clips_all_units_jointly(digits):
    (x, y), _ = digits
    model = model_with(keras.optimizers.SGD(1.0, global_clipnorm=1e-3))
    before = weights(model)
    model.train_on_batch(x[:32], y[:32])
    step = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(weights(model), before)))
    assert step == pytest.approx(1e-3, rel=1e-3)


def test_clipvalue_bounds_every_update(digits):
    (x, y), _ = digits
    model = model_with(keras.optimizers.SGD(1.0, clipvalue=1e-4))
    before = weights(model)
    model.train_on_batch(x[:32], y[:32])
    largest = max(np.abs(a - b).max() for a, b in zip(weights(model), before))
    assert 0 < largest <= 1e-4 * (1 + 1e-3)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_training_stays_finite_and_learns(digits, policy):
    (x, y), (x_test, y_test) = digits
    keras.config.set_dtype_policy(policy)
    try:
        model = model_with(keras.optimizers.Adam(3e-3), width=64)
        if policy == "mixed_float16":
            # Keras wraps the optimizer for loss scaling; every unit's loss
            # goes through its scale_loss.
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        history = model.fit(x, y, batch_size=64, epochs=4, verbose=0)
        assert all(np.isfinite(v) for v in history.history["loss"])
        unit = model.layer_chain()[0]
        h = unit(x_test[:8])
        assert keras.backend.standardize_dtype(h.dtype) == policy.split("_")[1]
        assert keras.backend.standardize_dtype(unit.project(h).dtype) == "float32"
        predictions = model.predict(x_test, verbose=0)
        assert np.mean(np.argmax(predictions, axis=1) == y_test) > 0.6
    finally:
        keras.config.set_dtype_policy("float32")


def test_mixed_float16_scales_every_units_loss_in_float32(digits):
    (x, y), _ = digits
    seen = []

    class RecordingLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
        def scale_loss(self, loss):
            seen.append(keras.backend.standardize_dtype(loss.dtype))
            return super().scale_loss(loss)

    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = model_with(RecordingLossScaleOptimizer(keras.optimizers.SGD(0.01)))
        # Eager steps, so that every call is one unit's loss of one step.
        model.compile(model.optimizer, CE, run_eagerly=True)
        before = weights(model)
        for _ in range(2):
            model.train_on_batch(x[:32], y[:32])
        scale = float(keras.ops.convert_to_numpy(model.optimizer.dynamic_scale))
    finally:
        keras.config.set_dtype_policy("float32")
    # Two SVP units and the head, per step, each in float32.
    assert seen == ["float32"] * (2 * 3)
    # The scale stayed high (no overflow) and the scaled gradients were
    # unscaled before the update: SGD(0.01) moves weights by small amounts.
    assert scale > 1
    moved = max(np.abs(a - b).max() for a, b in zip(weights(model), before))
    assert 0 < moved < 0.1


updates_each_unit = pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="JAX's step is one stateless XLA program with one optimizer update",
)


@updates_each_unit
def test_updating_each_unit_at_once_equals_one_update_of_all(digits):
    (x, y), _ = digits
    runs = []
    # A global norm clip too large to clip makes the trainer apply one
    # update of all units at the end of the step: the same arithmetic.
    for optimizer in (
        keras.optimizers.Adam(1e-2),
        keras.optimizers.Adam(1e-2, global_clipnorm=1e9),
    ):
        keras.utils.set_random_seed(0)
        model = model_with(optimizer)
        model.fit(x[:96], y[:96], batch_size=32, epochs=2, verbose=0)
        runs.append(weights(model))
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6
    for each_unit, joint in zip(*runs):
        np.testing.assert_allclose(each_unit, joint, rtol=1e-5, atol=1e-7)


@updates_each_unit
def test_each_unit_is_updated_and_its_gradients_dropped_before_the_next(digits):
    (x, y), _ = digits
    model = model_with(keras.optimizers.Adam(1e-3))
    groups = [unit.trainable_weights for unit in model._svp_units()]
    groups.append(model.head_weights)
    calls = []
    apply = model.optimizer.apply
    eager = keras.backend.backend() == "torch"

    def recording_apply(gradients, variables):
        # (TensorFlow records while tracing the step.) On PyTorch: which
        # groups still hold gradients when this one is applied.
        held = (
            [any(w.value.grad is not None for w in g) for g in groups]
            if eager
            else None
        )
        calls.append(([id(v) for v in variables], held))
        return apply(gradients, variables)

    model.optimizer.apply = recording_apply
    model.train_on_batch(x[:32], y[:32])
    expected = [[id(w) for w in g] for g in groups]
    # TensorFlow may trace the step more than once.
    assert [c[0] for c in calls] == expected * (len(calls) // len(groups))
    assert calls and (eager is False or len(calls) == len(groups))
    if eager:
        for index, (_, held) in enumerate(calls):
            assert held == [i == index for i in range(len(groups))]
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1
