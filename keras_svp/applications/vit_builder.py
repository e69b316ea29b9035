"""A small Vision Transformer trained block-wise (the paper's SVP+)."""

import keras

from keras_svp.applications.common import check_int
from keras_svp.applications.common import svp_sequential
from keras_svp.applications.vit_layers import ClassToken
from keras_svp.applications.vit_layers import PatchEmbedding
from keras_svp.applications.vit_layers import TokenPooling
from keras_svp.applications.vit_layers import TransformerBlock
from keras_svp.layers import SVPBlock
from keras_svp.layers.normalization import LayerNormalization


def vit(
    num_classes=10,
    input_shape=None,
    patch_size=4,
    dim=192,
    depth=6,
    num_heads=3,
    mlp_ratio=2.0,
    dropout=0.0,
    blocks_per_unit=1,
    reduction="cls",
    mode="svp",
    input_alignment=False,
    head_from_projection="auto",
    seed=None,
    name="vit",
    **unit_options,
):
    """A Vision Transformer whose transformer blocks train as SVP units.

    Patch embedding (plus a class token when `reduction="cls"`), then
    `depth` pre-norm `TransformerBlock`s grouped into `SVPBlock` units of
    `blocks_per_unit` blocks: each unit learns from its own local loss on
    its reduced tokens (class token or mean token) while the inside of a
    unit trains by ordinary backpropagation. The patch embedding and class
    token are trained by the first unit's loss. The last unit ends with a
    layer normalization; then `TokenPooling` and a `Dense(num_classes)`
    head.

    Args:
        num_classes: number of classes.
        input_shape: optional `(height, width, channels)`; when given the
            model is built.
        patch_size: side of the square patches.
        dim: token size.
        depth: number of transformer blocks.
        num_heads: attention heads per block (must divide `dim`).
        mlp_ratio: hidden width of each block's MLP over `dim`.
        dropout: dropout rate inside the blocks.
        blocks_per_unit: transformer blocks per SVP unit; must divide
            `depth`. `depth` gives end-to-end training within one unit.
        reduction: `"cls"` (class token) or `"mean"` (mean token), for the
            units' projections and the head alike.
        mode: `"svp"` or `"bp"`.
        input_alignment: whether the first unit aligns with a fixed random
            projection of the input (see `SVPModel`).
        head_from_projection: whether the head starts at the last unit's
            projection (`"auto"`, `True` or `False`; see `SVPModel`).
        seed: seed of that input projection (see `SVPModel`).
        name: model name.
        **unit_options: passed to every `SVPBlock`, e.g.
            `alignment_weight=0.5`.

    Returns:
        An uncompiled `SVPSequential`.

    Example:

        >>> import numpy as np
        >>> model = vit(dim=16, depth=4, num_heads=2, blocks_per_unit=2,
        ...             input_shape=(8, 8, 1))
        >>> [type(layer).__name__ for layer in model.layers]
        ['PatchEmbedding', 'ClassToken', 'SVPBlock', 'SVPBlock',
         'TokenPooling', 'Dense']
        >>> model.predict(np.zeros((2, 8, 8, 1)), verbose=0).shape
        (2, 10)
    """
    for arg, value in (
        ("num_classes", num_classes),
        ("patch_size", patch_size),
        ("dim", dim),
        ("depth", depth),
        ("num_heads", num_heads),
        ("blocks_per_unit", blocks_per_unit),
    ):
        check_int(arg, value)
    if depth % blocks_per_unit:
        raise ValueError(
            f"blocks_per_unit={blocks_per_unit} must divide depth={depth}: "
            "every SVP unit holds the same number of transformer blocks."
        )
    if reduction not in ("cls", "mean"):
        raise ValueError(f"reduction must be 'cls' or 'mean', got {reduction!r}.")
    layers = [PatchEmbedding(patch_size, dim, name="patch_embedding")]
    if reduction == "cls":
        layers.append(ClassToken(name="class_token"))
    num_units = depth // blocks_per_unit
    for unit in range(num_units):
        blocks = [
            TransformerBlock(dim, num_heads, mlp_ratio=mlp_ratio, dropout=dropout)
            for _ in range(blocks_per_unit)
        ]
        if unit == num_units - 1:
            blocks.append(LayerNormalization(epsilon=1e-6, name="final_norm"))
        layers.append(
            SVPBlock(blocks, reduction=reduction, name=f"unit_{unit}", **unit_options)
        )
    layers.append(TokenPooling(reduction, name="pooling"))
    layers.append(keras.layers.Dense(num_classes, name="head"))
    return svp_sequential(
        layers, mode, input_shape, input_alignment, seed, name, head_from_projection
    )
