"""UnitLossTracker: per-unit running means of the two local losses."""

import keras
import numpy as np
import pytest

import keras_svp
from keras_svp.models.unit_loss_tracker import UnitLossTracker


def as_floats(results):
    return {name: float(keras.ops.convert_to_numpy(v)) for name, v in results.items()}


def test_results_are_batch_weighted_means_like_keras_mean():
    batches = [([(1.0, 0.0), (2.0, 0.5)], 8), ([(3.0, 0.25), (5.0, 1.5)], 2)]
    tracker = UnitLossTracker(["a", "b"])
    means = {
        name: keras.metrics.Mean()
        for name in ("a_prediction_loss", "a_alignment_loss")
        + ("b_prediction_loss", "b_alignment_loss")
    }
    for losses, size in batches:
        tracker.update_state(losses, sample_weight=size)
        values = [value for pair in losses for value in pair]
        for mean, value in zip(means.values(), values):
            mean.update_state(value, sample_weight=size)
    expected = {name: float(mean.result()) for name, mean in means.items()}
    results = as_floats(tracker.result())
    assert list(results) == list(expected)
    assert results == pytest.approx(expected, rel=1e-6)
    tracker.reset_state()
    assert set(as_floats(tracker.result()).values()) == {0.0}


def test_tensor_losses_and_no_units():
    tracker = UnitLossTracker(["unit"])
    tracker.update_state([(keras.ops.ones(()), keras.ops.zeros(()))])
    assert as_floats(tracker.result()) == {
        "unit_prediction_loss": 1.0,
        "unit_alignment_loss": 0.0,
    }
    empty = UnitLossTracker([])
    empty.update_state([], sample_weight=4)
    assert empty.result() == {}


def test_wrong_number_of_units_is_a_clear_error():
    tracker = UnitLossTracker(["a", "b"])
    with pytest.raises(ValueError, match="tracks 2 units but got losses for 1"):
        tracker.update_state([(1.0, 0.0)])


def test_config_round_trip():
    tracker = UnitLossTracker(["a", "b"], name="losses")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tracker)
    )
    assert isinstance(restored, UnitLossTracker)
    assert restored.get_config() == tracker.get_config()


def mlp(depth):
    model = keras_svp.SVPSequential(
        [keras_svp.SVPDense(8, seed=i) for i in range(depth)] + [keras.layers.Dense(3)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    return model


def test_model_metric_state_does_not_grow_with_depth():
    # Keras resets every metric at each train_on_batch and syncs every
    # variable after it: per-unit metric objects made those costs grow with
    # depth. One tracker holds every unit's losses.
    x = np.random.default_rng(0).random((6, 5)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    sizes = []
    for depth in (2, 6):
        model = mlp(depth)
        logs = model.train_on_batch(x, y, return_dict=True)
        assert sum(key.endswith("_prediction_loss") for key in logs) == depth
        assert np.isfinite(list(logs.values())).all()
        sizes.append(len(model.metrics_variables))
    assert sizes[0] == sizes[1]
