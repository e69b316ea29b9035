"""Trains the same SVP model on one device and data-parallel on several, in
a fresh process (the devices must be set up before the backend starts), and
prints the largest weight difference as JSON.

Usage: python distributed_fit.py {jax|tensorflow} DEVICES
"""

import json
import os
import sys

backend, devices = sys.argv[1], int(sys.argv[2])
os.environ["KERAS_BACKEND"] = backend
if backend == "jax":
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_svp  # noqa: E402

if backend == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * devices
    )


def train(scope):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((256, 16)).astype("float32")
    y = rng.integers(0, 10, 256)
    with scope:
        model = keras_svp.SVPSequential(
            [
                keras_svp.SVPDense(32, projection_dropout=0.1, name="unit_a"),
                keras_svp.SVPDense(32, projection_dropout=0.1, name="unit_b"),
                keras.layers.Dense(10, name="head"),
            ],
            input_alignment=True,
        )
        model.compile(
            keras.optimizers.SGD(0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    history = model.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0)
    weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
    return weights, history.history


class NoScope:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


single, single_logs = train(NoScope())
if backend == "jax":
    assert len(keras.distribution.list_devices()) == devices
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    parallel, parallel_logs = train(NoScope())
    replicas = devices
else:
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])
    parallel, parallel_logs = train(strategy.scope())
    replicas = strategy.num_replicas_in_sync

print(
    json.dumps(
        {
            "replicas": replicas,
            "max_weight_difference": max(
                float(np.abs(a - b).max()) for a, b in zip(single, parallel)
            ),
            "max_log_difference": max(
                abs(a - b)
                for key in single_logs
                for a, b in zip(single_logs[key], parallel_logs[key])
            ),
            "moved": float(np.abs(single[0]).sum()),
        }
    )
)
