"""Each unit's update is the gradient of its own local loss, nothing else."""

import math

import keras
import numpy as np
import pytest
from numeric_gradient import numeric_grad

import keras_svp

LR = 0.1
LN_EPS = 1e-3  # keras.layers.LayerNormalization's default
erf = np.vectorize(math.erf)


def softmax_ce(z, y):
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def cosine_matrix(a):
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return a @ a.T


def dense_unit(x, kernel, bias, gamma, beta):
    h = x @ kernel + bias
    mean = h.mean(axis=1, keepdims=True)
    var = h.var(axis=1, keepdims=True)
    h = (h - mean) / np.sqrt(var + LN_EPS) * gamma + beta
    return 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))  # SVPDense's exact GELU


def local_loss(params, x, y, projection, previous_z, alpha):
    z = dense_unit(x, *params) @ projection
    loss = softmax_ce(z, y)
    if previous_z is not None:
        loss += alpha * np.mean((cosine_matrix(z) - cosine_matrix(previous_z)) ** 2)
    return loss


def unit_params(unit):
    return [
        keras.ops.convert_to_numpy(w).astype("float64")
        for w in (
            unit.dense.kernel,
            unit.dense.bias,
            unit.norm.gamma,
            unit.norm.beta,
        )
    ]


def make_model(mode, alpha=0.7):
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(6, projection_dropout=0.0, seed=1, name="unit_a"),
            keras_svp.SVPDense(
                5, projection_dropout=0.0, alignment_weight=alpha, seed=2, name="unit_b"
            ),
            keras.layers.Dense(3, name="head"),
        ],
        mode=mode,
    )
    model.compile(
        keras.optimizers.SGD(LR),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.build((None, 4))
    return model


def batch():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(9, 4)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2], dtype="int32")
    return x, y


def perturb_later_units(model, start=1):
    rng = np.random.default_rng(99)
    for layer in model.layer_chain()[start:]:
        for w in layer.trainable_weights:
            w.assign(rng.normal(size=w.shape).astype("float32"))


def test_each_unit_update_is_its_own_local_gradient():
    alpha = 0.7
    model = make_model("svp", alpha)
    unit_a, unit_b = model.layer_chain()[:2]
    x, y = batch()
    params_a, params_b = unit_params(unit_a), unit_params(unit_b)
    proj_a = keras.ops.convert_to_numpy(unit_a.projection.kernel).astype("float64")
    proj_b = keras.ops.convert_to_numpy(unit_b.projection.kernel).astype("float64")
    x64 = x.astype("float64")
    h_a = dense_unit(x64, *params_a)

    def loss_a(p):
        return local_loss(p, x64, y, proj_a, None, alpha)

    def loss_b(p):
        return local_loss(p, h_a, y, proj_b, h_a @ proj_a, alpha)

    expected_a = [p - LR * g for p, g in zip(params_a, numeric_grad(loss_a, params_a))]
    expected_b = [p - LR * g for p, g in zip(params_b, numeric_grad(loss_b, params_b))]

    model.train_on_batch(x, y)

    for got, want in zip(unit_params(unit_a), expected_a):
        np.testing.assert_allclose(got, want, atol=2e-5)
    for got, want in zip(unit_params(unit_b), expected_b):
        np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("mode, changes", [("svp", False), ("bp", True)])
def test_first_unit_update_ignores_later_units_only_in_svp(mode, changes):
    x, y = batch()
    updates = []
    for perturb in (False, True):
        keras.utils.set_random_seed(0)
        model = make_model(mode)
        if perturb:
            perturb_later_units(model)
        unit_a = model.layer_chain()[0]
        before = unit_params(unit_a)
        model.train_on_batch(x, y)
        updates.append([a - b for a, b in zip(unit_params(unit_a), before)])
    same = all(np.allclose(a, b, atol=1e-7) for a, b in zip(*updates))
    assert same != changes


def test_plain_weighted_layer_is_trained_by_the_next_unit():
    x, y = batch()
    updates = []
    for perturb in (False, True):
        keras.utils.set_random_seed(0)
        model = keras_svp.SVPSequential(
            [
                keras.layers.Dense(5, name="stem"),
                keras_svp.SVPDense(6, projection_dropout=0.0, seed=1),
                keras_svp.SVPDense(5, projection_dropout=0.0, seed=2),
                keras.layers.Dense(3),
            ]
        )
        model.compile(
            keras.optimizers.SGD(LR),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.build((None, 4))
        assert model._svp_units()[0].layers == model.layer_chain()[:2]
        if perturb:
            perturb_later_units(model, start=2)
        stem = model.layer_chain()[0]
        before = keras.ops.convert_to_numpy(stem.kernel).copy()
        model.train_on_batch(x, y)
        updates.append(keras.ops.convert_to_numpy(stem.kernel) - before)
    assert np.abs(updates[0]).max() > 1e-4
    np.testing.assert_allclose(updates[0], updates[1], atol=1e-7)


def test_one_optimizer_step_per_training_step():
    model = make_model("svp")
    x, y = batch()
    model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6


@pytest.mark.parametrize("first", [1.0, np.nan, np.inf])
def test_next_units_input_is_tied_to_the_gradients_unchanged(first):
    # The tie that orders the units in a compiled step adds an exact zero,
    # whatever the gradients hold.
    from keras_svp.models.trainers.base import computed_after

    gradients = [np.array([first, -np.inf], "float32"), np.ones((2, 2), "float16")]
    h = np.array([[-0.5, 3.0]], "float32")
    previous = np.array([[1.0]], "float16")
    tied_h, tied_previous, none = computed_after(gradients, h, previous, None)
    assert none is None
    assert keras.backend.standardize_dtype(tied_previous.dtype) == "float16"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tied_h), h)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tied_previous), previous)
