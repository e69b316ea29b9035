"""Data-parallel SVP training gives the same weights as one device.

The device set-up must precede the backend's start, so each check runs a
fresh process (`tests/workers/distributed_fit.py`) that trains the same
model on one device and data-parallel, and reports the largest difference.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

import keras_svp

WORKER = pathlib.Path(__file__).parent / "workers" / "distributed_fit.py"
BACKEND = keras.backend.backend()


def run_worker(backend, devices):
    done = subprocess.run(
        [sys.executable, str(WORKER), backend, str(devices)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, KERAS_BACKEND=backend),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution runs on JAX")
def test_jax_data_parallel_matches_one_device():
    result = run_worker("jax", 4)
    assert result["replicas"] == 4
    assert result["moved"] > 0
    assert result["max_weight_difference"] < 1e-5
    assert result["max_log_difference"] < 1e-4


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute is TensorFlow's")
def test_tf_mirrored_strategy_matches_one_device():
    # Each replica sees half of every batch; the alignment loss is computed
    # on the whole batch, gathered across replicas.
    result = run_worker("tensorflow", 2)
    assert result["replicas"] == 2
    assert result["max_weight_difference"] < 1e-5
    assert result["max_log_difference"] < 1e-4


@pytest.mark.skipif(BACKEND != "torch", reason="checks Keras' torch device")
def test_torch_trains_on_the_device_keras_picks(digits):
    # Keras' PyTorch backend runs on one device (a GPU when it sees one);
    # the projections, the optimizer state and every unit's step live there.
    from keras.src.backend.torch.core import get_device

    (x, y), _ = digits
    model = keras_svp.SVPSequential(
        [keras_svp.SVPDense(16), keras_svp.SVPDense(16), keras.layers.Dense(10)],
        input_alignment=True,
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x[:128], y[:128], batch_size=32, verbose=0)
    device = str(get_device()).split(":")[0]
    for variable in model.weights + model.optimizer.variables:
        assert variable.value.device.type == device, variable.path
