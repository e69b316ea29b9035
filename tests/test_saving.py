"""Saving and loading SVP models: `.keras` files, weights files, configs,
and files written under one backend loaded under the others."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
BACKENDS = ("tensorflow", "jax", "torch")


def conv_model(mode="svp"):
    """Every SVP layer type, input alignment and non-default options."""
    return keras_svp.SVPSequential(
        [
            keras.layers.Reshape((8, 8, 1)),
            keras_svp.SVPConv2D(
                8, 3, pool_size=2, projection_dim=16, seed=1, name="conv_unit"
            ),
            keras_svp.SVPBlock(
                [keras.layers.Conv2D(8, 3, padding="same", activation="relu")],
                reduction="mean",
                projection_scale="jl",
                alignment_target="activation",
                seed=2,
                name="block_unit",
            ),
            keras.layers.Flatten(),
            keras_svp.SVPDense(
                16, projection_dropout=0.2, alignment_weight=0.5, seed=3, name="dense"
            ),
            keras.layers.Dense(10, name="head"),
        ],
        mode=mode,
        input_alignment=True,
        seed=4,
        name="saved_net",
    )


def trained(model, x, y):
    model.compile(keras.optimizers.Adam(1e-3), CE, metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return model


def values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def as_json(config):
    return json.loads(json.dumps(config))


def assert_same_state(a, b):
    for u, v in zip(values(a.weights), values(b.weights), strict=True):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(
        values(a.optimizer.variables), values(b.optimizer.variables), strict=True
    ):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("mode", ["svp", "bp"])
def test_keras_file_round_trip_predicts_and_trains_on_identically(
    digits, mode, tmp_path
):
    (x, y), _ = digits
    x, y = x[:256], y[:256]
    model = trained(conv_model(mode), x, y)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects needed

    assert type(loaded) is keras_svp.SVPSequential
    assert as_json(loaded.get_config()) == as_json(model.get_config())
    assert loaded.mode == mode and loaded.input_alignment and loaded.seed == 4
    assert_same_state(model, loaded)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    )
    # One more step from the same state (weights, optimizer slots and the
    # projection-dropout generator) gives the same weights.
    model.train_on_batch(x[:32], y[:32])
    loaded.train_on_batch(x[:32], y[:32])
    assert_same_state(model, loaded)


def test_save_weights_and_load_weights(digits, tmp_path):
    (x, y), _ = digits
    x, y = x[:256], y[:256]
    model = trained(conv_model(), x, y)
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    fresh = conv_model()
    fresh.compile(keras.optimizers.Adam(1e-3), CE)
    fresh.build((None, 64))
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(path)
    assert_same_state(model, fresh)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), fresh.predict(x, verbose=0)
    )


def test_get_config_from_config_rebuilds_the_same_model():
    model = conv_model()
    model.build((None, 64))
    clone = keras_svp.SVPSequential.from_config(model.get_config())
    clone.build((None, 64))
    assert as_json(clone.get_config()) == as_json(model.get_config())
    # Seeded projections are part of the configuration, not of the weights.
    for a, b in zip(model.layer_chain(), clone.layer_chain()):
        if isinstance(a, keras_svp.SVPUnit):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a.projection.kernel),
                keras.ops.convert_to_numpy(b.projection.kernel),
            )


LOAD_AND_PREDICT = """
import sys
import keras
import numpy as np
import keras_svp  # registers the SVP classes
model = keras.models.load_model(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], keras.ops.convert_to_numpy(model.predict(x, verbose=0)))
print(type(model).__name__, model.mode, keras.backend.backend())
"""


def test_model_saved_under_one_backend_loads_under_the_others(digits, tmp_path):
    (x, y), _ = digits
    x, y = x[:256], y[:256]
    model = trained(conv_model(), x, y)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x[:64])
    expected = model.predict(x[:64], verbose=0)
    here = keras.backend.backend()
    for backend in BACKENDS:
        if backend == here:
            continue
        out = tmp_path / f"{backend}.npy"
        env = dict(os.environ, KERAS_BACKEND=backend)
        done = subprocess.run(
            [sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path / "model.keras")]
            + [str(tmp_path / "x.npy"), str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split()[-3:] == ["SVPSequential", "svp", backend]
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-4, atol=1e-4)
