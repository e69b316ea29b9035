"""Tests of `keras_svp.losses` against NumPy float64 reference implementations."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from keras import ops
from numeric_gradient import backend_gradient
from numeric_gradient import numeric_grad

from keras_svp import alignment_loss
from keras_svp import cosine_similarity_matrix
from keras_svp import local_prediction_loss
from keras_svp import losses

# --------------------------------------------------------------------------
# NumPy references (float64).


def np_cosine_similarity_matrix(x):
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return unit @ unit.T


def np_alignment_loss(a, b):
    if len(a) < 2:
        return 0.0
    diff = np_cosine_similarity_matrix(a) - np_cosine_similarity_matrix(b)
    return float(np.mean(diff**2))


def np_log_softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_prediction_loss(y_true, logits, sample_weight=None, sparse=True):
    log_p = np_log_softmax(logits)
    if sparse:
        y = np.asarray(y_true).reshape(-1).astype(int)
        per_sample = -log_p[np.arange(len(y)), y]
    else:
        per_sample = -(np.asarray(y_true, dtype=np.float64) * log_p).sum(axis=-1)
    if sample_weight is not None:
        per_sample = per_sample * np.asarray(sample_weight, np.float64).reshape(-1)
    # Keras' "sum_over_batch_size": weighted sum divided by the batch size.
    return float(per_sample.sum() / len(per_sample))


def to_numpy(x):
    return ops.convert_to_numpy(x)


def random_normal(shape, seed, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape) * scale


def random_orthogonal(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------------------
# cosine_similarity_matrix


# The cases loop inside the tests rather than being parametrized: every test
# pays a fixed teardown (`keras.backend.clear_session()` in conftest).


def test_cosine_matches_reference():
    for shape in [(1, 3), (2, 1), (5, 7), (8, 3, 4), (4, 2, 3, 2)]:
        x = random_normal(shape, seed=sum(shape)).astype("float32")
        s = to_numpy(cosine_similarity_matrix(x))
        assert s.shape == (shape[0], shape[0])
        assert s.dtype == np.float32
        np.testing.assert_allclose(
            s, np_cosine_similarity_matrix(x), atol=1e-6, err_msg=str(shape)
        )


def test_cosine_accepts_backend_tensors():
    x = random_normal((6, 5), seed=0).astype("float32")
    s = to_numpy(cosine_similarity_matrix(ops.convert_to_tensor(x)))
    np.testing.assert_allclose(s, np_cosine_similarity_matrix(x), atol=1e-6)


def test_cosine_zero_vectors_have_zero_similarity():
    x = random_normal((5, 4), seed=1).astype("float32")
    x[1] = 0.0
    x[3] = 0.0
    s = to_numpy(cosine_similarity_matrix(x))
    assert np.all(np.isfinite(s))
    np.testing.assert_array_equal(s[1], 0.0)
    np.testing.assert_array_equal(s[:, 3], 0.0)
    assert s[1, 1] == 0.0 and s[3, 3] == 0.0
    np.testing.assert_allclose(s, np_cosine_similarity_matrix(x), atol=1e-6)


def test_cosine_all_zero_batch():
    s = to_numpy(cosine_similarity_matrix(np.zeros((3, 4), "float32")))
    np.testing.assert_array_equal(s, np.zeros((3, 3)))


def test_cosine_diagonal_is_one_for_nonzero_rows():
    x = random_normal((7, 9), seed=2).astype("float32")
    s = to_numpy(cosine_similarity_matrix(x))
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cosine_float16_stays_finite_and_matches_float32(scale):
    # 1e4 is representable in float16 but its square (1e8) is not.
    x16 = np.clip(random_normal((6, 8), seed=3, scale=scale), -6e4, 6e4)
    x16 = x16.astype("float16")
    assert np.all(np.isfinite(x16))
    s = to_numpy(cosine_similarity_matrix(x16))
    assert s.dtype == np.float32
    assert np.all(np.isfinite(s))
    reference = to_numpy(cosine_similarity_matrix(x16.astype("float32")))
    np.testing.assert_allclose(s, reference, atol=1e-6)
    np.testing.assert_allclose(s, np_cosine_similarity_matrix(x16), atol=1e-5)


def test_cosine_scale_and_rotation_invariant():
    x = random_normal((6, 5), seed=4)
    q = random_orthogonal(5, seed=5)
    s = to_numpy(cosine_similarity_matrix(x.astype("float32")))
    for transformed in (3.5 * x, 1e-3 * x, x @ q, 7.0 * (x @ q)):
        np.testing.assert_allclose(
            to_numpy(cosine_similarity_matrix(transformed.astype("float32"))),
            s,
            atol=1e-5,
        )


# --------------------------------------------------------------------------
# alignment_loss


def test_alignment_matches_reference():
    for shape_a, shape_b in [
        ((4, 3), (4, 3)),
        ((8, 16), (8, 5)),
        ((5, 2, 3), (5, 7)),
        ((2, 1), (2, 4)),
    ]:
        a = random_normal(shape_a, seed=10).astype("float32")
        b = random_normal(shape_b, seed=11).astype("float32")
        loss = to_numpy(alignment_loss(a, b))
        assert loss.shape == ()
        assert loss.dtype == np.float32
        np.testing.assert_allclose(
            loss,
            np_alignment_loss(a, b),
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"{shape_a} {shape_b}",
        )


def test_alignment_forms_match_reference_values_and_gradients(monkeypatch):
    # Widths up to GRAM_MAX_FEATURES take the feature-by-feature form; the
    # batch-by-batch form is forced by setting the limit to 0. Both must
    # give the reference's value and gradient, near alignment too (where
    # the Gram form's terms cancel most).
    rng = np.random.default_rng(40)
    a = rng.normal(size=(16, 6))
    for b in [rng.normal(size=(16, 4)), a + 0.05 * rng.normal(size=a.shape)]:
        b = b.astype("float32")
        a32 = a.astype("float32")
        expected = np_alignment_loss(a32, b)
        (expected_gradient,) = numeric_grad(
            lambda params, b=b: np_alignment_loss(params[0], b), [a32.astype("float64")]
        )
        for limit in [losses.GRAM_MAX_FEATURES, 0]:
            monkeypatch.setattr(losses, "GRAM_MAX_FEATURES", limit)
            loss = to_numpy(alignment_loss(a32, b))
            np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-7)
            gradient = backend_gradient(lambda x, b=b: alignment_loss(x, b), a32)
            scale = np.abs(expected_gradient).max()
            np.testing.assert_allclose(
                gradient, expected_gradient, atol=1e-4 * scale, err_msg=str(limit)
            )


def test_alignment_of_a_large_batch_of_projections_matches_reference():
    # A batch of 1024 projections of width 10: the feature-by-feature form,
    # checked where the batch-by-batch one would hold 1024 x 1024 matrices.
    rng = np.random.default_rng(41)
    a = rng.normal(size=(1024, 10))
    for b in [rng.normal(size=(1024, 10)), a + 0.01 * rng.normal(size=a.shape)]:
        loss = to_numpy(alignment_loss(a.astype("float32"), b.astype("float32")))
        expected = np_alignment_loss(a.astype("float32"), b.astype("float32"))
        np.testing.assert_allclose(loss, expected, rtol=1e-3, atol=1e-7)


def test_alignment_of_wide_features_matches_reference():
    # Above GRAM_MAX_FEATURES the batch-by-batch form is used.
    a = random_normal((6, losses.GRAM_MAX_FEATURES + 44), seed=42).astype("float32")
    b = random_normal((6, 3, 5, 20), seed=43).astype("float32")
    np.testing.assert_allclose(
        to_numpy(alignment_loss(a, b)), np_alignment_loss(a, b), rtol=1e-5, atol=1e-7
    )


def test_alignment_of_identical_batches_is_zero():
    a = random_normal((6, 4), seed=12).astype("float32")
    np.testing.assert_allclose(to_numpy(alignment_loss(a, a)), 0.0, atol=1e-7)


def test_alignment_is_symmetric():
    a = random_normal((6, 4), seed=13).astype("float32")
    b = random_normal((6, 9), seed=14).astype("float32")
    np.testing.assert_allclose(
        to_numpy(alignment_loss(a, b)), to_numpy(alignment_loss(b, a)), atol=1e-7
    )


def test_alignment_batch_size_one_is_zero():
    for width_a, width_b in [(3, 3), (1, 5), (7, 2)]:
        a = random_normal((1, width_a), seed=15).astype("float32")
        b = random_normal((1, width_b), seed=16).astype("float32")
        loss = to_numpy(alignment_loss(a, b))
        assert np.isfinite(loss)
        assert loss == 0.0
        # Zero vectors with a batch of one: still 0, never NaN.
        zero = np.zeros((1, width_a), "float32")
        assert to_numpy(alignment_loss(zero, b)) == 0.0
        assert to_numpy(alignment_loss(zero.astype("float16"), b)) == 0.0


def test_alignment_in_a_functional_model_of_unknown_batch():
    # A Lambda layer infers its output from symbolic inputs of unknown batch
    # size (on JAX, a symbolic dimension); the batch is only known later.
    a_input, b_input = keras.Input((4,)), keras.Input((6,))
    assert tuple(alignment_loss(a_input, b_input).shape) == ()
    loss = keras.layers.Lambda(lambda ab: ops.reshape(alignment_loss(*ab), (1,)))(
        [a_input, b_input]
    )
    model = keras.Model([a_input, b_input], loss)
    a = random_normal((5, 4), seed=30).astype("float32")
    b = random_normal((5, 6), seed=31).astype("float32")
    value = model.predict([a, b], batch_size=5, verbose=0)
    np.testing.assert_allclose(value, [np_alignment_loss(a, b)], atol=1e-5)
    assert model.predict([a[:1], b[:1]], verbose=0).tolist() == [0.0]


def test_alignment_with_zero_vectors_is_finite():
    a = random_normal((5, 4), seed=17).astype("float32")
    b = random_normal((5, 6), seed=18).astype("float32")
    a[2] = 0.0
    b[0] = 0.0
    loss = to_numpy(alignment_loss(a, b))
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, np_alignment_loss(a, b), rtol=1e-5, atol=1e-6)
    all_zero = to_numpy(alignment_loss(np.zeros((4, 3), "float32"), b[:4]))
    assert np.isfinite(all_zero)
    np.testing.assert_allclose(
        all_zero, np_alignment_loss(np.zeros((4, 3)), b[:4]), rtol=1e-5
    )


def test_alignment_invariant_to_scale_and_rotation():
    a = random_normal((8, 6), seed=19)
    b = random_normal((8, 4), seed=20)
    q_a = random_orthogonal(6, seed=21)
    q_b = random_orthogonal(4, seed=22)
    expected = to_numpy(alignment_loss(a.astype("float32"), b.astype("float32")))
    for ta, tb in [
        (5.0 * a, b),
        (a, 1e-3 * b),
        (a @ q_a, b),
        (a, b @ q_b),
        (2.0 * (a @ q_a), 1e3 * (b @ q_b)),
    ]:
        np.testing.assert_allclose(
            to_numpy(alignment_loss(ta.astype("float32"), tb.astype("float32"))),
            expected,
            rtol=1e-4,
            atol=1e-6,
        )


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_alignment_float16_matches_float32(scale):
    a16 = np.clip(random_normal((6, 8), seed=23, scale=scale), -6e4, 6e4)
    b16 = np.clip(random_normal((6, 3), seed=24, scale=scale), -6e4, 6e4)
    a16, b16 = a16.astype("float16"), b16.astype("float16")
    loss = to_numpy(alignment_loss(a16, b16))
    assert loss.dtype == np.float32
    assert np.isfinite(loss)
    reference = to_numpy(alignment_loss(a16.astype("float32"), b16.astype("float32")))
    np.testing.assert_allclose(loss, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, np_alignment_loss(a16, b16), rtol=1e-4, atol=1e-5)


def test_alignment_mixed_dtypes():
    a = random_normal((5, 4), seed=25)
    b = random_normal((5, 6), seed=26)
    loss = to_numpy(alignment_loss(a.astype("float16"), b.astype("float64")))
    assert loss.dtype == np.float32
    np.testing.assert_allclose(
        loss, np_alignment_loss(a.astype("float16"), b), rtol=1e-4, atol=1e-5
    )


# --------------------------------------------------------------------------
# local_prediction_loss


@pytest.mark.parametrize("batch, classes", [(1, 2), (4, 3), (16, 10)])
def test_prediction_loss_sparse(batch, classes):
    rng = np.random.default_rng(batch * classes)
    logits = rng.normal(size=(batch, classes)).astype("float32") * 3
    labels = rng.integers(0, classes, size=batch)
    for label_dtype in ("int32", "int64"):
        for column in (False, True):
            y = labels.astype(label_dtype)
            if column:  # Shape (batch, 1).
                y = y[:, None]
            loss = to_numpy(local_prediction_loss(y, logits))
            assert loss.shape == ()
            assert loss.dtype == np.float32
            np.testing.assert_allclose(
                loss,
                np_prediction_loss(y, logits),
                rtol=1e-5,
                err_msg=f"{label_dtype} column={column}",
            )


def test_prediction_loss_sparse_column_and_flat_agree():
    rng = np.random.default_rng(30)
    logits = rng.normal(size=(6, 4)).astype("float32")
    y = rng.integers(0, 4, size=6)
    np.testing.assert_allclose(
        to_numpy(local_prediction_loss(y, logits)),
        to_numpy(local_prediction_loss(y[:, None], logits)),
        rtol=1e-6,
    )
    # Backend tensors as well as NumPy arrays.
    np.testing.assert_allclose(
        to_numpy(
            local_prediction_loss(
                ops.convert_to_tensor(y), ops.convert_to_tensor(logits)
            )
        ),
        np_prediction_loss(y, logits),
        rtol=1e-5,
    )


def test_prediction_loss_one_hot():
    for batch, classes in [(1, 2), (5, 3), (8, 10)]:
        rng = np.random.default_rng(40 + batch)
        logits = rng.normal(size=(batch, classes)).astype("float32")
        y = rng.integers(0, classes, size=batch)
        one_hot = np.eye(classes, dtype="float32")[y]
        loss = to_numpy(local_prediction_loss(one_hot, logits))
        np.testing.assert_allclose(
            loss, np_prediction_loss(one_hot, logits, sparse=False), rtol=1e-5
        )
        # Same value as the sparse form of the same labels.
        np.testing.assert_allclose(
            loss, to_numpy(local_prediction_loss(y, logits)), rtol=1e-5
        )


def test_prediction_loss_soft_labels():
    rng = np.random.default_rng(50)
    logits = rng.normal(size=(6, 4)).astype("float32")
    soft = rng.random(size=(6, 4))
    soft = (soft / soft.sum(axis=-1, keepdims=True)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(local_prediction_loss(soft, logits)),
        np_prediction_loss(soft, logits, sparse=False),
        rtol=1e-5,
    )


def test_prediction_loss_sparse_labels_with_wider_logits():
    # A projection wider than the number of classes (projection_dim > K):
    # only class ids 0..K-1 occur, the extra logits act as extra classes.
    rng = np.random.default_rng(60)
    logits = rng.normal(size=(8, 12)).astype("float32")
    y = rng.integers(0, 3, size=8)
    np.testing.assert_allclose(
        to_numpy(local_prediction_loss(y, logits)),
        np_prediction_loss(y, logits),
        rtol=1e-5,
    )


@pytest.mark.parametrize("sparse", [True, False])
def test_prediction_loss_sample_weight_matches_keras(sparse):
    rng = np.random.default_rng(70)
    batch, classes = 7, 5
    logits = rng.normal(size=(batch, classes)).astype("float32")
    y = rng.integers(0, classes, size=batch)
    flat_weights = rng.random(size=batch).astype("float32")
    flat_weights[2] = 0.0
    if sparse:
        labels = y
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        labels = np.eye(classes, dtype="float32")[y]
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    for weights in (flat_weights, flat_weights[:, None]):
        loss = to_numpy(local_prediction_loss(labels, logits, sample_weight=weights))
        # Keras' default "sum_over_batch_size": divided by the batch size,
        # not by the sum of the weights.
        expected = to_numpy(keras_loss(labels, logits, sample_weight=weights))
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
        np.testing.assert_allclose(
            loss, np_prediction_loss(labels, logits, weights, sparse=sparse), rtol=1e-5
        )


def test_prediction_loss_unit_sample_weight_is_unweighted():
    rng = np.random.default_rng(80)
    logits = rng.normal(size=(5, 3)).astype("float32")
    y = rng.integers(0, 3, size=5)
    np.testing.assert_allclose(
        to_numpy(local_prediction_loss(y, logits, sample_weight=np.ones(5))),
        to_numpy(local_prediction_loss(y, logits)),
        rtol=1e-6,
    )


def test_prediction_loss_float16_logits():
    rng = np.random.default_rng(90)
    logits = (rng.normal(size=(6, 4)) * 1e4).clip(-6e4, 6e4).astype("float16")
    y = rng.integers(0, 4, size=6)
    loss = to_numpy(local_prediction_loss(y, logits))
    assert loss.dtype == np.float32
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, np_prediction_loss(y, logits), rtol=1e-4)


# --------------------------------------------------------------------------
# Property tests.

SCALES = [0.0, 1e-3, 1.0, 1e3, 1e6]


def make_batch(seed, batch, width, scale, dtype, zero_rows):
    x = random_normal((batch, width), seed=seed, scale=scale)
    x[np.asarray(zero_rows[:batch], dtype=bool)] = 0.0
    # Saturate at the dtype's largest finite value: float16 cannot hold 1e6,
    # and the test is about large finite inputs, not infinities.
    limit = float(np.finfo(dtype).max)
    return np.clip(x, -limit, limit).astype(dtype)


batch_strategy = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "batch": st.integers(1, 16),
        "width_a": st.integers(1, 32),
        "width_b": st.integers(1, 32),
        "scale_a": st.sampled_from(SCALES),
        "scale_b": st.sampled_from(SCALES),
        "dtype": st.sampled_from(["float16", "float32"]),
        "zero_rows": st.lists(st.booleans(), min_size=16, max_size=16),
    }
)


@settings(max_examples=30, deadline=None)
@given(params=batch_strategy)
def test_property_cosine_matrix(params):
    x = make_batch(
        params["seed"],
        params["batch"],
        params["width_a"],
        params["scale_a"],
        params["dtype"],
        params["zero_rows"],
    )
    s = to_numpy(cosine_similarity_matrix(x))
    assert s.shape == (params["batch"], params["batch"])
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, s.T, atol=1e-6)
    assert np.all(s <= 1.0 + 1e-6) and np.all(s >= -1.0 - 1e-6)
    np.testing.assert_allclose(s, np_cosine_similarity_matrix(x), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(params=batch_strategy)
def test_property_alignment_loss(params):
    a = make_batch(
        params["seed"],
        params["batch"],
        params["width_a"],
        params["scale_a"],
        params["dtype"],
        params["zero_rows"],
    )
    b = make_batch(
        params["seed"] + 1,
        params["batch"],
        params["width_b"],
        params["scale_b"],
        params["dtype"],
        params["zero_rows"][::-1],
    )
    loss = float(to_numpy(alignment_loss(a, b)))
    assert np.isfinite(loss)
    assert -1e-7 <= loss <= 4.0 + 1e-5
    if params["batch"] < 2:
        assert loss == 0.0
    np.testing.assert_allclose(loss, np_alignment_loss(a, b), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    batch=st.integers(1, 16),
    classes=st.integers(2, 32),
    scale=st.sampled_from(SCALES),
    dtype=st.sampled_from(["float16", "float32"]),
)
def test_property_prediction_loss(seed, batch, classes, scale, dtype):
    rng = np.random.default_rng(seed)
    limit = float(np.finfo(dtype).max)
    logits = np.clip(rng.normal(size=(batch, classes)) * scale, -limit, limit)
    logits = logits.astype(dtype)
    y = rng.integers(0, classes, size=batch)
    loss = float(to_numpy(local_prediction_loss(y, logits)))
    assert np.isfinite(loss)
    assert loss >= 0.0
    np.testing.assert_allclose(
        loss, np_prediction_loss(y, logits), rtol=1e-4, atol=1e-4
    )


def test_one_hot_labels_narrower_than_the_logits_match_sparse_labels():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6, 32)).astype("float32")
    labels = rng.integers(0, 10, size=6)
    sparse = keras.ops.convert_to_numpy(local_prediction_loss(labels, logits))
    one_hot = keras.ops.convert_to_numpy(
        local_prediction_loss(np.eye(10, dtype="float32")[labels], logits)
    )
    np.testing.assert_allclose(one_hot, sparse, rtol=1e-5)
