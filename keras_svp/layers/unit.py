"""What every SVP unit shares: its fixed projection and its local loss."""

import keras
from keras import ops

from keras_svp import losses
from keras_svp.layers.normalization import LayerNormalization
from keras_svp.projections import RandomProjection
from keras_svp.projections import draw_seed
from keras_svp.projections import validate_projection_args

ALIGNMENT_TARGETS = ("projection", "activation")


class SVPUnit(keras.layers.Layer):
    """Base class of the SVP layers: a body, a fixed projection, a local loss.

    A unit's `call` is its ordinary forward pass (`h = f(x)`); inference
    never touches the projection. During SVP training the model also calls
    `project(h)` and `local_losses(...)`, and trains the unit's weights from
    that loss alone.

    Subclasses build their body in `build_body(input_shape)` and return the
    body's output shape from `compute_output_shape`.

    Args:
        projection_dim: size `d` of the projection; `None` takes the model's
            number of classes when the unit is built inside an `SVPModel`.
        projection_dropout: dropout rate on the projection weights (a fresh
            mask each training step). 0 by default: on Fashion-MNIST the
            MLP's accuracy fell as the rate rose (see the benchmarks).
        projection_scale: `"fan_in"` (`N(0, 1/D)`) or `"jl"` (`N(0, 1/d)`).
        alignment_weight: `alpha`, the weight of the alignment loss.
        alignment_target: `"projection"` aligns the projections `z` of
            consecutive units (the paper); `"activation"` aligns their
            reduced activations instead.
        projection_pool_size: optional average-pooling window applied to a
            `(batch, height, width, channels)` activation before the
            projection flattens it, a memory saver for wide feature maps.
        seed: integer seed of the projection and its dropout masks; `None`
            draws one from NumPy's global generator (so
            `keras.utils.set_random_seed` fixes it).
        **kwargs: base `Layer` arguments.

    Returns:
        Called on a tensor, the body's activation `h` (the subclass's
        forward pass).

    Example:

        Every SVP layer is an `SVPUnit`; the training step uses its
        projection and local losses like this:

        >>> import numpy as np
        >>> unit = SVPDense(16, projection_dim=10, seed=0)
        >>> isinstance(unit, SVPUnit)
        True
        >>> x = np.random.rand(4, 8).astype("float32")
        >>> h = unit(x)
        >>> z = unit.project(h)
        >>> tuple(z.shape)
        (4, 10)
        >>> y = np.array([0, 1, 2, 3])
        >>> prediction, alignment = unit.local_losses(y, z, z, None)
        >>> float(prediction) > 0, float(alignment)
        (True, 0.0)
    """

    reduction = "flatten"

    def __init__(
        self,
        projection_dim=None,
        projection_dropout=0.0,
        projection_scale="fan_in",
        alignment_weight=1.0,
        alignment_target="projection",
        projection_pool_size=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_projection_args(projection_dim, projection_dropout, projection_scale)
        if alignment_target not in ALIGNMENT_TARGETS:
            raise ValueError(
                f"alignment_target must be one of {ALIGNMENT_TARGETS}, got "
                f"{alignment_target!r}."
            )
        if float(alignment_weight) < 0:
            raise ValueError(
                "alignment_weight must be >= 0 (0 turns the alignment loss "
                f"off), got {alignment_weight!r}."
            )
        self.projection_dim = projection_dim
        self.projection_dropout = float(projection_dropout)
        self.projection_scale = projection_scale
        self.alignment_weight = float(alignment_weight)
        self.alignment_target = alignment_target
        self.projection_pool_size = projection_pool_size
        self.seed = draw_seed() if seed is None else int(seed)
        self.projection = None

    def build_body(self, input_shape):
        raise NotImplementedError

    def build(self, input_shape):
        self.build_body(input_shape)
        if self.projection_dim is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' has projection_dim=None "
                "and is not inside an SVPModel that supplies its number of "
                "classes. Pass projection_dim=<number of classes>, or build "
                "the layer as part of an SVPSequential/SVPModel."
            )
        self.projection = RandomProjection(
            self.projection_dim,
            reduction=self.reduction,
            pool_size=self.projection_pool_size,
            dropout=self.projection_dropout,
            scale=self.projection_scale,
            seed=self.seed,
            name="projection",
        )
        try:
            self.projection.build(self.compute_output_shape(input_shape))
        except ValueError as error:
            raise ValueError(f"SVP unit '{self.name}': {error}") from error

    def project(self, h, training=None):
        """`z = reduce(h) @ R̃`, float32, shape `(batch, projection_dim)`."""
        return self.projection.project(h, training=training)

    def alignment_features(self, h, z):
        """What this unit aligns with its predecessor: `z` or `reduce(h)`."""
        if self.alignment_target == "projection":
            return z
        return self.projection.features(h)

    def local_losses(self, y, z, features, previous_features, sample_weight=None):
        """The unit's prediction and alignment losses (both float32 scalars).

        Args:
            y: labels, sparse or one-hot.
            z: this unit's projection, from `project`.
            features: this unit's `alignment_features`.
            previous_features: the previous unit's `alignment_features`
                (gradients are stopped here), or `None` for no alignment.
            sample_weight: optional per-sample weights (prediction loss only).
        """
        prediction = losses.local_prediction_loss(y, z, sample_weight)
        if previous_features is None or self.alignment_weight == 0:
            return prediction, ops.zeros((), "float32")
        alignment = losses.alignment_loss(
            features, ops.stop_gradient(previous_features)
        )
        return prediction, alignment

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "projection_dropout": self.projection_dropout,
                "projection_scale": self.projection_scale,
                "alignment_weight": self.alignment_weight,
                "alignment_target": self.alignment_target,
                "projection_pool_size": self.projection_pool_size,
                "seed": self.seed,
            }
        )
        return config


def call_layer(layer, x, training):
    """Calls `layer`, passing `training` only where its `call` accepts it."""
    if getattr(layer, "_call_has_training_arg", False):
        return layer(x, training=training)
    return layer(x)


def normalization_layer(normalization, dtype, name):
    """`"layer"`, `"batch"` or `None` -> a Keras normalization layer or None."""
    if normalization is None or normalization == "none":
        return None
    if normalization == "layer":
        return LayerNormalization(dtype=dtype, name=name)
    if normalization == "batch":
        return keras.layers.BatchNormalization(dtype=dtype, name=name)
    raise ValueError(
        "normalization must be 'layer', 'batch' or None, got "
        f"{normalization!r}. The paper shows the alignment loss is unstable "
        "without normalization, so None is for ablations only."
    )
