"""The two parts of an SVP unit's local loss, usable on their own.

All functions take backend tensors (or NumPy arrays) and compute in float32,
whatever the input dtype, so that float16 activations cannot overflow the
squared norms or underflow the cosine similarities.
"""

import keras
from keras import ops

from keras_svp.dtypes import as_dtype

# Below this norm a vector counts as zero: its cosine similarities are 0,
# never NaN.
_EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="keras_svp")
def cosine_similarity_matrix(x):
    """Pairwise cosine similarity of the rows of a batch.

    Args:
        x: tensor of shape `(batch, ...)`; each sample is flattened.

    Returns:
        A float32 tensor of shape `(batch, batch)` whose entry `(i, j)` is
        `cos(x_i, x_j)`. A zero sample has similarity 0 with every sample,
        itself included.

    Example:

        >>> import numpy as np
        >>> s = cosine_similarity_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]))
        >>> np.round(keras.ops.convert_to_numpy(s).astype(float), 3).tolist()
        [[1.0, 0.707], [0.707, 1.0]]
    """
    x = _unit_rows(x)
    return x @ ops.transpose(x)


def _unit_rows(x):
    """The samples of a batch flattened and scaled to norm 1 (zero stays 0).

    Arithmetic on two tensors uses Python's operators, and a cast or a
    reshape happens only where needed: eager PyTorch pays Keras' dispatch
    for every `keras.ops` call, more than the arithmetic of a unit's
    projection costs, while the operators go straight to the backend.
    """
    x = as_dtype(x, "float32")
    if len(x.shape) != 2:
        x = ops.reshape(x, (ops.shape(x)[0], -1))
    squared_norm = ops.sum(x * x, axis=-1, keepdims=True)
    return x * ops.rsqrt(_at_least(squared_norm, _EPSILON**2))


def _at_least(x, floor):
    """`max(x, floor)` for a Python number `floor`.

    Written with the tensor's own operators: Keras' PyTorch ops turn a
    Python number into a device tensor, a host-to-device copy that waits
    for the GPU, once per call.
    """
    return ops.relu(x - floor) + floor


# Up to this many features per sample (on both sides) the alignment loss is
# computed from feature-by-feature Gram matrices; above it, from the two
# batch-by-batch similarity matrices (see `alignment_loss`).
GRAM_MAX_FEATURES = 256


@keras.saving.register_keras_serializable(package="keras_svp")
def alignment_loss(a, b):
    """Feature-alignment loss between two batches of representations.

    `mean_ij (S(a)_ij - S(b)_ij)^2` where `S` is the pairwise cosine
    similarity matrix over the batch. The two widths may differ; the loss is
    invariant to rotation and scale of either argument. Batches of fewer than
    two samples carry no pairwise geometry, so the loss is 0 for them.

    When neither sample has more than `GRAM_MAX_FEATURES` (256) features, as
    with projections, the loss is computed from feature-by-feature products
    and no batch-by-batch matrix is formed: its cost and memory grow with
    the batch, not with its square. The value is the same up to float32
    rounding.

    Args:
        a: tensor of shape `(batch, ...)`.
        b: tensor of shape `(batch, ...)`, same batch size as `a`.

    Returns:
        A float32 scalar.

    Example:

        >>> import numpy as np
        >>> a = np.random.default_rng(0).normal(size=(8, 5))
        >>> float(alignment_loss(a, 3.0 * a)) < 1e-6
        True
    """
    a, b = _unit_rows(a), _unit_rows(b)
    if _gram_form_fits(a, b):
        # With S(a) = a a^T for the normalized rows, sum_ij (S(a) - S(b))_ij^2
        # = |a^T a|^2 - 2 |a^T b|^2 + |b^T b|^2 (Frobenius norms): the same
        # loss from feature-by-feature products, without a batch-by-batch
        # matrix. For a projection (d = number of classes) and a batch of
        # 1024 that is ~100x less arithmetic and memory. All three come
        # from one product: P = [a, b]^T [a, -b] has the blocks a^T a,
        # -a^T b, b^T a and -b^T b, and P * P^T holds the squares with the
        # signs of the sum (fewer operations: eager backends pay for each).
        # Rounding can take the sum a hair below zero when the two batches
        # align; it is clamped.
        products = ops.transpose(ops.concatenate([a, b], axis=1)) @ (
            ops.concatenate([a, -b], axis=1)
        )
        squared_sum = ops.relu(ops.sum(products * ops.transpose(products)))
        return _per_pair(squared_sum, a)
    difference = a @ ops.transpose(a) - b @ ops.transpose(b)
    return _per_pair(ops.sum(difference * difference), a)


def _per_pair(squared_sum, a):
    """`squared_sum` over the batch's pairs; 0 for fewer than two samples."""
    batch_size = a.shape[0]
    if isinstance(batch_size, int):
        # A known batch size stays a Python number (see `_at_least`).
        if batch_size < 2:
            return ops.zeros_like(squared_sum)
        return squared_sum / float(batch_size * batch_size)
    batch_size = ops.shape(a)[0]
    if not ops.is_tensor(batch_size):
        # No size to read: a `keras.Input`'s unknown batch, or JAX's symbolic
        # dimension while a `Lambda` layer infers its output. Count the rows.
        batch_size = ops.sum(ops.ones_like(a[:, 0]))
    pairs = ops.cast(batch_size * batch_size, "float32")
    loss = squared_sum / ops.maximum(pairs, 1.0)
    return ops.where(batch_size < 2, ops.zeros_like(loss), loss)


def _gram_form_fits(a, b):
    """Whether both batches have at most `GRAM_MAX_FEATURES` features."""
    widths = (a.shape[-1], b.shape[-1])
    return all(w is not None and w <= GRAM_MAX_FEATURES for w in widths)


@keras.saving.register_keras_serializable(package="keras_svp")
def local_prediction_loss(y_true, logits, sample_weight=None):
    """Cross-entropy of labels against projected activations used as logits.

    Labels may be sparse (integer class ids, shape `(batch,)` or
    `(batch, 1)`) or one-hot / soft (shape `(batch, num_classes)`). The
    logits may be wider than the number of classes (a projection size above
    the number of classes); the extra logits are never a target.

    Args:
        y_true: labels.
        logits: tensor of shape `(batch, num_classes)`, the unit's projection.
        sample_weight: optional per-sample weights of shape `(batch,)`.

    Returns:
        A float32 scalar: the weighted sum of per-sample losses divided by the
        batch size, as Keras' default `"sum_over_batch_size"` reduction does.

    Example:

        >>> import numpy as np
        >>> logits = np.array([[10.0, 0.0], [0.0, 10.0]])
        >>> float(local_prediction_loss(np.array([0, 1]), logits)) < 1e-3
        True
    """
    logits = as_dtype(logits, "float32")
    y_true = ops.convert_to_tensor(y_true)
    if is_sparse_labels(y_true, logits):
        if len(y_true.shape) != 1:
            y_true = ops.reshape(y_true, (-1,))
        per_sample = ops.sparse_categorical_crossentropy(
            y_true, logits, from_logits=True
        )
    else:
        y_true = ops.cast(y_true, "float32")
        extra = logits.shape[-1] - y_true.shape[-1]
        if extra > 0:
            # A projection wider than the number of classes: the extra
            # logits are never a target.
            y_true = ops.pad(y_true, [(0, 0), (0, extra)])
        per_sample = ops.categorical_crossentropy(y_true, logits, from_logits=True)
    if sample_weight is not None:
        sample_weight = as_dtype(sample_weight, "float32")
        if len(sample_weight.shape) != 1:
            sample_weight = ops.reshape(sample_weight, (-1,))
        per_sample = per_sample * sample_weight
    return ops.mean(per_sample)


def is_sparse_labels(y_true, logits):
    """Whether `y_true` holds class ids rather than one-hot rows for `logits`."""
    rank = len(y_true.shape)
    if rank == len(logits.shape) - 1:
        return True
    return rank == len(logits.shape) and y_true.shape[-1] == 1
