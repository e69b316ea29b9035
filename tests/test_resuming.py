"""Resuming interrupted SVP training, and run-to-run determinism."""

import keras
import numpy as np
import pytest

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
EPOCHS = 4


def seeded_model(seed=7):
    # Unseeded layers draw their projections and initial weights from the
    # global seed, as a user's model would.
    keras.utils.set_random_seed(seed)
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(32, projection_dropout=0.2),
            # Seeded: on PyTorch an unseeded Keras Dropout draws from torch's
            # global generator, whose state no checkpoint holds.
            keras.layers.Dropout(0.1, seed=seed),
            keras_svp.SVPDense(32, projection_dropout=0.2),
            keras.layers.Dense(10),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), CE, metrics=["accuracy"])
    return model


def weights(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def assert_same_weights(a, b):
    for u, v in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(u, v)


class Interrupt(keras.callbacks.Callback):
    """Stops the run like a crash after `epoch` epochs have finished."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise RuntimeError("Interrupted")


def fit(model, data, **kwargs):
    x, y = data
    kwargs.setdefault("epochs", EPOCHS)
    return model.fit(x, y, batch_size=100, shuffle=False, verbose=0, **kwargs)


@pytest.fixture
def data(digits):
    (x, y), _ = digits
    return x[:500], y[:500]


@pytest.fixture
def uninterrupted(data):
    model = seeded_model()
    fit(model, data)
    return model


def test_two_seeded_runs_give_identical_weights(data, uninterrupted):
    again = seeded_model()
    fit(again, data)
    assert_same_weights(uninterrupted, again)
    other = seeded_model(seed=8)
    fit(other, data)
    assert not np.array_equal(weights(other)[0], weights(uninterrupted)[0])


def test_backup_and_restore_resumes_to_the_uninterrupted_weights(
    data, uninterrupted, tmp_path
):
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    crashed = seeded_model()
    with pytest.raises(RuntimeError, match="Interrupted"):
        fit(crashed, data, callbacks=[backup, Interrupt(2)])

    # A new process would rebuild the model from its code, with the same
    # seed, and call fit again with the same callback.
    resumed = seeded_model()
    seen = []
    epochs = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(epoch)
    )
    fit(resumed, data, callbacks=[backup, epochs])
    assert seen == [2, 3]
    assert_same_weights(uninterrupted, resumed)
    assert int(resumed.optimizer.iterations) == EPOCHS * 5


def test_model_checkpoint_resumes_to_the_uninterrupted_weights(
    data, uninterrupted, tmp_path
):
    path = tmp_path / "epoch{epoch}.keras"
    checkpoint = keras.callbacks.ModelCheckpoint(str(path))
    first = seeded_model()
    fit(first, data, epochs=2, callbacks=[checkpoint])

    resumed = keras.models.load_model(tmp_path / "epoch2.keras")
    fit(resumed, data, initial_epoch=2)
    assert_same_weights(uninterrupted, resumed)
