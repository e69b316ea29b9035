"""The fixed random projection that gives every SVP unit its local head."""

import math

import keras
import numpy as np
from keras import ops

from keras_svp.dtypes import as_dtype

PROJECTION_SCALES = ("fan_in", "jl")
REDUCTIONS = ("flatten", "mean", "cls")


def draw_seed():
    """A fresh integer seed from NumPy's global generator.

    `keras.utils.set_random_seed` seeds NumPy too, so unseeded projections are
    reproducible under it.
    """
    return int(np.random.randint(0, 2**31 - 1))


def projection_matrix(input_dim, projection_dim, seed, scale="fan_in"):
    """The fixed projection matrix as a float32 NumPy array.

    Drawn with NumPy's `PCG64` generator, so a seed gives the same matrix on
    every Keras backend and every device.

    Args:
        input_dim: `D`, the width of the reduced activation.
        projection_dim: `d`, the projection size.
        seed: integer seed.
        scale: `"fan_in"` draws `N(0, 1/D)` (unit-scale logits for
            normalized activations); `"jl"` draws `N(0, 1/d)`, the
            Johnson-Lindenstrauss scaling, whose logits grow as `sqrt(D/d)`.

    Returns:
        Array of shape `(input_dim, projection_dim)`.

    Example:

        >>> projection_matrix(4, 2, seed=0).shape
        (4, 2)
    """
    if scale not in PROJECTION_SCALES:
        raise ValueError(
            f"projection_scale must be one of {PROJECTION_SCALES}, got {scale!r}."
        )
    std = 1.0 / math.sqrt(input_dim if scale == "fan_in" else projection_dim)
    rng = np.random.Generator(np.random.PCG64(seed))
    matrix = rng.standard_normal((input_dim, projection_dim)) * std
    return matrix.astype("float32")


def reduce_features(h, reduction="flatten"):
    """Turns a unit's activation into one vector per sample.

    Args:
        h: tensor of shape `(batch, ...)`.
        reduction: `"flatten"` keeps every value; `"mean"` averages over all
            axes between batch and channels (tokens, or height and width);
            `"cls"` takes the first token of a `(batch, tokens, channels)`
            sequence.

    Returns:
        Tensor of shape `(batch, features)`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    rank = len(h.shape)
    if reduction == "flatten" or rank == 2:
        if rank == 2:
            return h
        return ops.reshape(h, (ops.shape(h)[0], -1))
    if reduction == "mean":
        return ops.mean(h, axis=tuple(range(1, rank - 1)))
    if rank != 3:
        raise ValueError(
            "reduction='cls' takes the first token of a (batch, tokens, "
            f"channels) sequence, but the activation has shape {h.shape}. "
            "Use reduction='mean' or 'flatten' for other shapes."
        )
    return h[:, 0, :]


def reduced_dim(shape, reduction="flatten"):
    """Width of `reduce_features` for an activation of `shape`."""
    if reduction == "cls" and len(shape) not in (2, 3):
        # Fail at build time, as `reduce_features` would at the first call.
        raise ValueError(
            "reduction='cls' takes the first token of a (batch, tokens, "
            f"channels) sequence, but the activation has shape {tuple(shape)}. "
            "Use reduction='mean' or 'flatten' for other shapes."
        )
    if reduction == "flatten":
        dims = shape[1:]
        if any(d is None for d in dims):
            raise ValueError(
                "reduction='flatten' needs every non-batch dimension of the "
                f"activation to be known, got shape {shape}. Use "
                "reduction='mean' for inputs of variable size."
            )
        return int(np.prod(dims))
    return int(shape[-1])


@keras.saving.register_keras_serializable(package="keras_svp")
class RandomProjection(keras.layers.Layer):
    """Fixed random projection with dropout on its weights.

    Maps a unit's activation `h` to `z = reduce(h) @ R̃`, where `R` is drawn
    once from `seed` at build time and never trained, and during training
    `R̃ = R ⊙ m / (1 - p)` with a fresh Bernoulli mask `m` every call (the
    Monte Carlo part of SVP). At inference `R̃ = R`. The product is computed
    in float32 whatever the compute dtype.

    Args:
        projection_dim: `d`, the output size (usually the number of classes).
        reduction: how `h` becomes a vector, see `reduce_features`.
        pool_size: optional average-pooling window applied to a feature map
            before flattening, a memory saver for wide convolutional units.
        dropout: `p`, the dropout rate on the projection weights, in `[0, 1)`.
        scale: `"fan_in"` (`N(0, 1/D)`) or `"jl"` (`N(0, 1/d)`).
        seed: integer seed of the matrix and of the dropout masks. `None`
            draws one from NumPy's global generator.
        **kwargs: base `Layer` arguments.

    Returns:
        Called on an activation `h` of shape `(batch, ...)`, the float32
        projection `z` of shape `(batch, projection_dim)`.

    Example:

        >>> import numpy as np
        >>> projection = RandomProjection(10, seed=1)
        >>> tuple(projection(np.ones((4, 32))).shape)
        (4, 10)
    """

    def __init__(
        self,
        projection_dim,
        reduction="flatten",
        pool_size=None,
        dropout=0.1,
        scale="fan_in",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_projection_args(projection_dim, dropout, scale)
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {REDUCTIONS}, got {reduction!r}."
            )
        self.projection_dim = int(projection_dim)
        self.reduction = reduction
        self.pool_size = _pair(pool_size) if pool_size is not None else None
        self.dropout = float(dropout)
        self.scale = scale
        self.seed = draw_seed() if seed is None else int(seed)
        # Offset so that the dropout masks are not correlated with the matrix.
        self.seed_generator = keras.random.SeedGenerator(self.seed + 1)

    def build(self, input_shape):
        shape = self._pooled_shape(input_shape)
        input_dim = reduced_dim(shape, self.reduction)
        matrix = projection_matrix(
            input_dim, self.projection_dim, self.seed, self.scale
        )
        self.kernel = self.add_weight(
            name="kernel",
            shape=matrix.shape,
            initializer=keras.initializers.Constant(matrix),
            trainable=False,
            dtype="float32",
            autocast=False,
        )

    def matrix(self):
        """`R` as a NumPy array: the kernel's value, drawn again from the seed.

        Readable where the kernel's value is not, e.g. while Keras builds
        a model symbolically.
        """
        self._check_built("matrix()")
        input_dim, projection_dim = self.kernel.shape
        return projection_matrix(input_dim, projection_dim, self.seed, self.scale)

    def _check_built(self, method):
        if not self.built:
            raise ValueError(
                f"RandomProjection '{self.name}' is not built, so it has no "
                "matrix yet. Call the layer once, or call build(input_shape), "
                f"before {method}."
            )

    def _pooled_shape(self, input_shape):
        if self.pool_size is None:
            return tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                "pool_size pools a (batch, height, width, channels) feature "
                f"map, but the activation has shape {tuple(input_shape)}."
            )
        batch, height, width, channels = input_shape
        pool_height, pool_width = self.pool_size
        if (height is not None and height < pool_height) or (
            width is not None and width < pool_width
        ):
            raise ValueError(
                f"pool_size {self.pool_size} is larger than the {height}x{width} "
                "feature map it would pool, which leaves nothing to project. "
                "Use a smaller projection_pool_size for this unit, or None."
            )
        return (batch, height // pool_height, width // pool_width, channels)

    def features(self, h):
        """`reduce(h)`: the vector per sample that the matrix projects."""
        if self.pool_size is not None:
            h = ops.average_pool(h, self.pool_size, self.pool_size, "valid")
        return reduce_features(h, self.reduction)

    def call(self, h, training=None):
        return self.project(h, training=training)

    def project(self, h, training=None):
        """`call` without the `Layer.__call__` wrapper, for a built layer.

        SVP units call this once per training step: on eager PyTorch the
        wrapper costs more than the projection's arithmetic. What the
        wrapper does to a built layer's input, casting it to the compute
        dtype, happens here, and only where the dtypes differ.
        """
        self._check_built("project()")
        features = as_dtype(self.features(as_dtype(h, self.compute_dtype)), "float32")
        kernel = ops.convert_to_tensor(self.kernel)
        if training and self.dropout > 0:
            kernel = keras.random.dropout(
                kernel, self.dropout, seed=self.seed_generator
            )
        # The operator, not ops.matmul: less of Keras' dispatch on PyTorch.
        return features @ kernel

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.projection_dim)

    def compute_output_spec(self, h, training=None):
        return keras.KerasTensor((h.shape[0], self.projection_dim), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "reduction": self.reduction,
                "pool_size": self.pool_size,
                "dropout": self.dropout,
                "scale": self.scale,
                "seed": self.seed,
            }
        )
        return config


def validate_projection_args(projection_dim, dropout, scale):
    """Raises a clear error for projection options out of range."""
    if projection_dim is not None and (
        isinstance(projection_dim, bool)
        or not isinstance(projection_dim, (int, np.integer))
        or projection_dim < 1
    ):
        raise ValueError(
            "projection_dim must be a positive integer (or None for the "
            f"model's number of classes), got {projection_dim!r}."
        )
    if not 0 <= float(dropout) < 1:
        raise ValueError(
            f"projection_dropout must be in [0, 1), got {dropout!r}: it is "
            "the probability of dropping a projection weight."
        )
    if scale not in PROJECTION_SCALES:
        raise ValueError(
            f"projection_scale must be one of {PROJECTION_SCALES}, got {scale!r}."
        )


def _pair(value):
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value)
