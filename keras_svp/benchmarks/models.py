"""The models and data the benchmarks measure, built the same way for both modes."""

import sys

import keras
import numpy as np

from keras_svp import applications

HEAD_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def set_random_seed(seed):
    """`keras.utils.set_random_seed`, without importing TensorFlow needlessly.

    Keras also seeds `tf.random` whenever TensorFlow is installed, and
    imports it to do so: 3 s of CPU in every JAX or PyTorch benchmark
    process on the reference machine, for a seed that nothing here uses (the
    benchmarks never feed `tf.data`). Where TensorFlow is the backend or
    already imported, this is `keras.utils.set_random_seed` unchanged.
    """
    from keras.src.utils import module_utils

    lazy_tf = module_utils.tensorflow
    if (
        keras.backend.backend() == "tensorflow"
        or "tensorflow" in sys.modules
        # `vars`, not `hasattr`: the lazy module imports on a missing name.
        or vars(lazy_tf).get("_available", False) is not None
    ):
        keras.utils.set_random_seed(seed)
        return
    lazy_tf._available = False
    try:
        keras.utils.set_random_seed(seed)
    finally:
        lazy_tf._available = None


def compile_model(model, learning_rate=1e-3, jit_compile="auto"):
    """Compiles `model` with Adam, sparse cross-entropy on logits, accuracy.

    `jit_compile` goes to `model.compile`: `True` runs TensorFlow's step
    through XLA, which Keras leaves off by default on a CPU.
    """
    model.compile(
        keras.optimizers.Adam(learning_rate),
        HEAD_LOSS,
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def build_mlp(
    depth,
    width,
    mode,
    num_classes=10,
    seed=0,
    flatten=False,
    input_alignment=False,
    learning_rate=1e-3,
    jit_compile="auto",
    head_layers=0,
    **unit_options,
):
    """`applications.mlp`: `depth` SVPDense units of `width`, compiled.

    `unit_options` go to every `SVPDense` (e.g. `projection_dropout=0`);
    `jit_compile` to `compile_model`. With `head_layers=1` the last hidden
    layer belongs to the output head (see `applications.mlp`).
    """
    return build_application(
        "mlp",
        mode,
        seed=seed,
        learning_rate=learning_rate,
        jit_compile=jit_compile,
        num_classes=num_classes,
        depth=depth,
        width=width,
        flatten=flatten,
        input_alignment=input_alignment,
        head_layers=head_layers,
        **unit_options,
    )


# Three SVPConv2D units of 32, 64 and 128 filters, each with max pooling.
SMALL_CNN = (32, "M", 64, "M", 128, "M")


def build_cnn(
    mode,
    num_classes=10,
    seed=0,
    input_alignment=False,
    learning_rate=1e-3,
    head_convolutions=0,
    width_multiplier=1,
    **unit_options,
):
    """A small VGG-style CNN (`SMALL_CNN`), compiled and unbuilt.

    Its three poolings fit images of 8x8 pixels or more. With
    `head_convolutions=1` its last convolution belongs to the output head
    (two `SVPConv2D` units; see `applications.vgg`); `width_multiplier`
    scales its filters (2: 64, 128 and 256).
    """
    return build_application(
        "vgg",
        mode,
        seed=seed,
        learning_rate=learning_rate,
        config=SMALL_CNN,
        num_classes=num_classes,
        input_shape=None,
        input_alignment=input_alignment,
        head_convolutions=head_convolutions,
        width_multiplier=width_multiplier,
        name="cnn_conv_head" if head_convolutions else "cnn",
        **unit_options,
    )


def build_application(
    builder, mode, seed=0, learning_rate=1e-3, jit_compile="auto", **options
):
    """`keras_svp.applications.<builder>(mode=mode, **options)`, seeded and compiled.

    Args:
        builder: `"mlp"`, `"vgg"`, `"vgg11"` or `"vit"`.
        mode: `"svp"` or `"bp"`.
        seed: seeds Keras (the weights and the units' projections) and the
            model's input projection.
        learning_rate: Adam's learning rate.
        jit_compile: `model.compile`'s `jit_compile` (`True`: TensorFlow's
            step runs through XLA).
        **options: the builder's arguments, e.g. `input_shape`, `depth`.

    Returns:
        The compiled model (Adam, sparse cross-entropy on logits, accuracy).
    """
    set_random_seed(seed)
    build = getattr(applications, builder)
    model = build(mode=mode, seed=seed, **options)
    return compile_model(model, learning_rate, jit_compile)


def synthetic_batch(batch_size, width, num_classes=10, seed=0):
    """One batch of random inputs and labels, for memory and speed."""
    return synthetic_images(batch_size, (width,), num_classes, seed)


def synthetic_images(batch_size, image_shape=(32, 32, 3), num_classes=10, seed=0):
    """One batch of random inputs of `image_shape` and labels.

    Args:
        batch_size: number of examples.
        image_shape: shape of one input, e.g. `(32, 32, 3)` for images.
        num_classes: labels are drawn from `range(num_classes)`.
        seed: seed of the NumPy generator.

    Returns:
        `(x, y)`: float32 standard-normal inputs of shape
        `(batch_size, *image_shape)` and int32 labels of shape
        `(batch_size,)`.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *image_shape)).astype("float32")
    y = rng.integers(0, num_classes, size=batch_size).astype("int32")
    return x, y
