"""SVP models learn real data (scikit-learn's digits) on every backend."""

import keras
import numpy as np

import keras_svp

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@keras.saving.register_keras_serializable(package="keras_svp_tests")
class TransformerBlock(keras.layers.Layer):
    """A pre-norm transformer encoder block (attention + MLP, residuals)."""

    def __init__(self, dim, heads, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads = dim, heads
        self.norm_1 = keras.layers.LayerNormalization()
        self.attention = keras.layers.MultiHeadAttention(heads, dim // heads)
        self.norm_2 = keras.layers.LayerNormalization()
        self.mlp_1 = keras.layers.Dense(2 * dim, activation="gelu")
        self.mlp_2 = keras.layers.Dense(dim)

    def build(self, input_shape):
        self.norm_1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm_2.build(input_shape)
        self.mlp_1.build(input_shape)
        self.mlp_2.build(input_shape[:-1] + (2 * self.dim,))

    def call(self, x):
        y = self.norm_1(x)
        x = x + self.attention(y, y)
        return x + self.mlp_2(self.mlp_1(self.norm_2(x)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads}


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def train(model, digits, shape, epochs, lr=1e-3):
    (x_train, y_train), (x_test, y_test) = digits
    model.compile(keras.optimizers.Adam(lr), CE, metrics=["accuracy"])
    model.fit(x_train.reshape(shape), y_train, epochs=epochs, batch_size=64, verbose=0)
    return accuracy(model, x_test.reshape(shape), y_test)


def test_svp_mlp_reaches_95_percent_on_digits(digits):
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(256),
            keras_svp.SVPDense(256),
            keras_svp.SVPDense(256),
            keras.layers.Dense(10),
        ]
    )
    assert train(model, digits, (-1, 64), epochs=15) >= 0.95


def test_svp_conv_model_learns_digits(digits):
    model = keras_svp.SVPSequential(
        [
            keras_svp.SVPConv2D(16, 3),
            keras_svp.SVPConv2D(32, 3, pool_size=2),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    # BatchNorm needs a few epochs before its moving statistics settle.
    assert train(model, digits, (-1, 8, 8, 1), epochs=10) >= 0.8


def test_svp_block_transformer_learns_digits(digits):
    # Each image row is a token: 8 tokens of 8 pixels.
    model = keras_svp.SVPSequential(
        [
            keras.layers.Dense(32),  # token embedding, trained by the first unit
            keras_svp.SVPBlock([TransformerBlock(32, 4)], reduction="mean"),
            keras_svp.SVPBlock([TransformerBlock(32, 4)], reduction="mean"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(10),
        ]
    )
    # The head starts from scratch on features that keep moving: a larger
    # step size lets it keep up within the test budget.
    assert train(model, digits, (-1, 8, 8), epochs=8, lr=3e-3) >= 0.7
