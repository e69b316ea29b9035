"""The hand-written JAX step the benchmark compares against computes exactly
what Keras' SVP step computes, so the speed ratio compares like with like."""

import keras
import numpy as np
import pytest

from keras_svp.benchmarks import models

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the reference step is JAX code"
)


def test_reference_step_matches_the_keras_svp_step():
    import jax

    from keras_svp.benchmarks import reference_jax

    depth, width = 2, 16
    x, y = models.synthetic_batch(12, 8)
    model = models.build_mlp(depth, width, "svp", projection_dropout=0.0)
    model.build((None, 8))
    state, _ = reference_jax.init(depth, width, 8)
    units = model.layer_chain()[:depth]
    head = model.layer_chain()[-1]
    as_jax = lambda w: jax.numpy.asarray(keras.ops.convert_to_numpy(w))  # noqa: E731
    state["params"] = (
        [
            {
                "kernel": as_jax(u.dense.kernel),
                "bias": as_jax(u.dense.bias),
                "gamma": as_jax(u.norm.gamma),
                "beta": as_jax(u.norm.beta),
            }
            for u in units
        ],
        {"kernel": as_jax(head.kernel), "bias": as_jax(head.bias)},
    )
    projections = [as_jax(u.projection.kernel) for u in units]
    step = reference_jax.make_step(projections, dropout=0.0)
    state, loss = step(state, x, y, jax.random.PRNGKey(0))

    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], float(loss), rtol=1e-5)
    for unit, params in zip(units, state["params"][0]):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(unit.dense.kernel), params["kernel"], atol=1e-6
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(unit.norm.gamma), params["gamma"], atol=1e-6
        )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(head.kernel), state["params"][1]["kernel"], atol=1e-6
    )
