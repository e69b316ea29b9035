"""The models and data the benchmarks measure, built the same way for both modes."""

import keras
import numpy as np

import keras_svp

HEAD_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(model, learning_rate=1e-3):
    model.compile(keras.optimizers.Adam(learning_rate), HEAD_LOSS, metrics=["accuracy"])
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
    **unit_options,
):
    """`depth` SVPDense units of `width`, then `Dense(num_classes)`, compiled.

    `unit_options` go to every `SVPDense` (e.g. `projection_dropout=0`).
    """
    keras.utils.set_random_seed(seed)
    layers = [keras.layers.Flatten()] if flatten else []
    layers += [keras_svp.SVPDense(width, **unit_options) for _ in range(depth)]
    layers.append(keras.layers.Dense(num_classes))
    return _compiled_sequential(layers, mode, seed, input_alignment, learning_rate)


def build_cnn(
    mode,
    num_classes=10,
    seed=0,
    input_alignment=False,
    learning_rate=1e-3,
    **unit_options,
):
    """A small CNN of `SVPConv2D` units for 28x28 images, compiled."""
    keras.utils.set_random_seed(seed)
    layers = [
        keras_svp.SVPConv2D(32, 3, pool_size=2, **unit_options),
        keras_svp.SVPConv2D(64, 3, pool_size=2, **unit_options),
        keras_svp.SVPConv2D(128, 3, pool_size=2, **unit_options),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),
    ]
    return _compiled_sequential(layers, mode, seed, input_alignment, learning_rate)


def _compiled_sequential(layers, mode, seed, input_alignment, learning_rate):
    model = keras_svp.SVPSequential(
        layers, mode=mode, input_alignment=input_alignment, seed=seed
    )
    return compile_model(model, learning_rate)


def synthetic_batch(batch_size, width, num_classes=10, seed=0):
    """One batch of random inputs and labels, for memory and speed."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, width)).astype("float32")
    y = rng.integers(0, num_classes, size=batch_size).astype("int32")
    return x, y
