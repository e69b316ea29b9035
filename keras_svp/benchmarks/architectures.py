"""Training-step memory of backprop against SVP for every application family.

The memory benchmark (`python -m keras_svp.benchmarks --only memory`) sweeps
the depth of an MLP; this one measures the networks
`keras_svp.applications` ships, each on one synthetic image batch, with the
same per-backend accounting (`memory.step_memory`):

- the paper's MLP (`applications.mlp`, `SVPDense` units),
- VGG-11 (`applications.vgg11`, `SVPConv2D` units),
- the accuracy benchmark's small CNN (`models.SMALL_CNN`), with one unit
  per convolution and with its last convolution in the output head
  (`head_convolutions=1`),
- the ViT trained block-wise, SVP+ (`applications.vit`, `SVPBlock` units),
  at several depths, to show whether SVP's memory stays flat in depth while
  backprop's grows.
"""

import math

import keras

from keras_svp.benchmarks import memory
from keras_svp.benchmarks import models

MODES = ("bp", "svp")


def configurations(
    image_shape=(32, 32, 3),
    mlp_width=1024,
    vgg_width_multiplier=1.0,
    vit_dim=192,
    vit_heads=3,
    vit_depths=(6, 12),
    patch_size=4,
):
    """The networks the benchmark measures.

    Args:
        image_shape: `(height, width, channels)` of the input images.
        mlp_width: width of the MLP's three `SVPDense` units (paper: 1024).
        vgg_width_multiplier: scales VGG-11's filter counts.
        vit_dim: the ViT's token size.
        vit_heads: its attention heads (must divide `vit_dim`).
        vit_depths: the ViT depths to measure, one transformer block per
            SVP unit.
        patch_size: the ViT's patch side.

    Returns:
        A list of `(label, builder, options)`: `builder` names a function of
        `keras_svp.applications` and `options` its arguments besides `mode`
        and `seed`.
    """
    image_shape = tuple(image_shape)
    found = [
        (
            f"MLP 3 x {mlp_width}",
            "mlp",
            {"depth": 3, "width": mlp_width, "input_shape": image_shape},
        ),
        (
            f"VGG-11 (width x{vgg_width_multiplier:g})",
            "vgg11",
            {"width_multiplier": vgg_width_multiplier, "input_shape": image_shape},
        ),
        (
            "small CNN",
            "vgg",
            {"config": models.SMALL_CNN, "input_shape": image_shape},
        ),
        (
            "small CNN, last convolution in the head",
            "vgg",
            {
                "config": models.SMALL_CNN,
                "input_shape": image_shape,
                "head_convolutions": 1,
            },
        ),
    ]
    for depth in vit_depths:
        found.append(
            (
                f"ViT SVP+ dim {vit_dim}, depth {depth}",
                "vit",
                {
                    "input_shape": image_shape,
                    "patch_size": patch_size,
                    "dim": vit_dim,
                    "num_heads": vit_heads,
                    "depth": depth,
                    "blocks_per_unit": 1,
                },
            )
        )
    return found


def memory_rows(
    configs, batch_size, image_shape=(32, 32, 3), progress=print, jit_compile="auto"
):
    """Measures one training step of every configuration in both modes.

    Args:
        configs: from `configurations`.
        batch_size: images per batch.
        image_shape: their shape (must match the configurations').
        progress: called with one line of text per measurement.
        jit_compile: `model.compile`'s `jit_compile` (`True`: TensorFlow's
            step runs through XLA).

    Returns:
        One row per configuration and mode: `benchmark="architectures"`,
        `architecture` (the label), `builder`, its options, `mode`,
        `batch_size`, `trainable_params`, and `memory.step_memory`'s fields.
    """
    x, y = models.synthetic_images(batch_size, tuple(image_shape))
    rows = []
    for label, builder, options in configs:
        for mode in MODES:
            model = models.build_application(
                builder, mode, jit_compile=jit_compile, **options
            )
            params = sum(math.prod(w.shape) for w in model.trainable_weights)
            result = memory.step_memory(model, x, y)
            rows.append(
                {
                    "benchmark": "architectures",
                    "architecture": label,
                    "builder": builder,
                    **{k: v for k, v in options.items() if k != "input_shape"},
                    "image_shape": list(image_shape),
                    "mode": mode,
                    "batch_size": batch_size,
                    "trainable_params": params,
                    **result,
                }
            )
            progress(
                f"architectures {result['backend']} {label} {mode}: "
                f"{result['step_mib']:.1f} MiB"
            )
            keras.backend.clear_session()
    return rows
