"""The layers of the Vision Transformer: patches, class token, blocks."""

import keras
from keras import ops

from keras_svp.layers.normalization import LayerNormalization
from keras_svp.projections import REDUCTIONS


@keras.saving.register_keras_serializable(package="keras_svp")
class PatchEmbedding(keras.layers.Layer):
    """Cuts images into patches, embeds each linearly, adds its position.

    A `Conv2D` with kernel and stride `patch_size` embeds the
    non-overlapping patches; a learned position embedding per patch is
    added. Edge pixels that do not fill a whole patch are dropped.

    Args:
        patch_size: side of the square patches, in pixels.
        dim: size of each patch's embedding.
        **kwargs: base `Layer` arguments.

    Returns:
        Called on images `(batch, height, width, channels)`, the tokens
        `(batch, (height // patch_size) * (width // patch_size), dim)`.

    Example:

        >>> import numpy as np
        >>> tuple(PatchEmbedding(4, 16)(np.zeros((2, 28, 28, 1))).shape)
        (2, 49, 16)
    """

    def __init__(self, patch_size, dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.dim = int(dim)
        self.projection = keras.layers.Conv2D(
            self.dim,
            self.patch_size,
            strides=self.patch_size,
            dtype=self.dtype_policy,
            name="patch_projection",
        )
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _num_patches(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(
                "PatchEmbedding needs a known image height and width for its "
                f"position embedding; got input shape {input_shape}."
            )
        if height < self.patch_size or width < self.patch_size:
            raise ValueError(
                f"Images of {height}x{width} pixels are smaller than one "
                f"{self.patch_size}x{self.patch_size} patch; use a smaller "
                "patch_size."
            )
        return (height // self.patch_size) * (width // self.patch_size)

    def build(self, input_shape):
        num_patches = self._num_patches(input_shape)
        self.projection.build(input_shape)
        self.position_embedding = self.add_weight(
            shape=(num_patches, self.dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="position_embedding",
        )

    def call(self, inputs):
        x = self.projection(inputs)
        x = ops.reshape(x, (ops.shape(x)[0], -1, self.dim))
        return x + ops.cast(self.position_embedding, x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._num_patches(input_shape), self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size, "dim": self.dim})
        return config


@keras.saving.register_keras_serializable(package="keras_svp")
class ClassToken(keras.layers.Layer):
    """Prepends one learned token to a sequence (ViT's `[CLS]` token).

    Args:
        **kwargs: base `Layer` arguments.

    Returns:
        Called on tokens `(batch, tokens, dim)`, the tokens `(batch,
        tokens + 1, dim)` with the class token first.

    Example:

        >>> import numpy as np
        >>> tuple(ClassToken()(np.zeros((2, 49, 16))).shape)
        (2, 50, 16)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape):
        self.token = self.add_weight(
            shape=(1, 1, input_shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="token",
        )

    def call(self, inputs):
        token = ops.cast(self.token, inputs.dtype)
        token = ops.broadcast_to(token, (ops.shape(inputs)[0], 1, inputs.shape[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])


@keras.saving.register_keras_serializable(package="keras_svp")
class TransformerBlock(keras.layers.Layer):
    """A pre-norm transformer encoder block: attention and MLP, residuals.

    `x + attention(norm(x))`, then `x + mlp(norm(x))` with a two-layer GELU
    MLP of hidden width `mlp_ratio * dim`.

    Args:
        dim: token size (input and output).
        num_heads: attention heads; must divide `dim`.
        mlp_ratio: hidden width of the MLP over `dim`.
        dropout: dropout rate on the attention weights and the MLP output.
        **kwargs: base `Layer` arguments.

    Returns:
        Called on tokens `(batch, tokens, dim)`, tokens of the same shape.

    Example:

        >>> import numpy as np
        >>> block = TransformerBlock(dim=16, num_heads=2)
        >>> tuple(block(np.zeros((2, 5, 16))).shape)
        (2, 5, 16)
    """

    def __init__(self, dim, num_heads, mlp_ratio=2.0, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(
                f"num_heads={num_heads} must divide dim={dim} (each head gets "
                "dim // num_heads features)."
            )
        self.dim = int(dim)
        self.num_heads = int(num_heads)
        self.mlp_ratio = float(mlp_ratio)
        self.dropout = float(dropout)
        self.hidden_dim = max(1, int(round(self.dim * self.mlp_ratio)))
        policy = self.dtype_policy
        self.norm_1 = LayerNormalization(epsilon=1e-6, dtype=policy, name="norm_1")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads,
            self.dim // self.num_heads,
            dropout=self.dropout,
            dtype=policy,
            name="attention",
        )
        self.norm_2 = LayerNormalization(epsilon=1e-6, dtype=policy, name="norm_2")
        self.mlp_1 = keras.layers.Dense(
            self.hidden_dim, activation="gelu", dtype=policy, name="mlp_1"
        )
        self.mlp_2 = keras.layers.Dense(self.dim, dtype=policy, name="mlp_2")
        self.mlp_dropout = keras.layers.Dropout(self.dropout, dtype=policy)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape):
        if input_shape[-1] != self.dim:
            raise ValueError(
                f"TransformerBlock(dim={self.dim}) got tokens of size "
                f"{input_shape[-1]}; make dim match the patch embedding."
            )
        self.norm_1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm_2.build(input_shape)
        self.mlp_1.build(input_shape)
        self.mlp_2.build((*input_shape[:-1], self.hidden_dim))

    def call(self, inputs, training=None):
        y = self.norm_1(inputs)
        x = inputs + self.attention(y, y, training=training)
        y = self.mlp_2(self.mlp_1(self.norm_2(x)))
        return x + self.mlp_dropout(y, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "dropout": self.dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_svp")
class TokenPooling(keras.layers.Layer):
    """Reduces tokens to one vector: the class token or the mean token.

    Args:
        reduction: `"cls"` (first token) or `"mean"` (mean over tokens).
        **kwargs: base `Layer` arguments.

    Returns:
        Called on tokens `(batch, tokens, dim)`, vectors `(batch, dim)`.

    Example:

        >>> import numpy as np
        >>> x = np.arange(12, dtype="float32").reshape(1, 3, 4)
        >>> ops.convert_to_numpy(TokenPooling("cls")(x)).tolist()
        [[0.0, 1.0, 2.0, 3.0]]
        >>> ops.convert_to_numpy(TokenPooling("mean")(x)).tolist()
        [[4.0, 5.0, 6.0, 7.0]]
    """

    def __init__(self, reduction="cls", **kwargs):
        super().__init__(**kwargs)
        if reduction not in REDUCTIONS or reduction == "flatten":
            raise ValueError(f"reduction must be 'cls' or 'mean', got {reduction!r}.")
        self.reduction = reduction
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def call(self, inputs):
        if self.reduction == "cls":
            return inputs[:, 0, :]
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}
