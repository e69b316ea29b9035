"""`fit` takes every input Keras takes, with sparse or one-hot labels and
sample weights, and trains the same on each."""

import keras
import numpy as np
import pytest

import keras_svp

BATCH = 32


def model(loss="sparse"):
    keras.utils.set_random_seed(3)
    net = keras_svp.SVPSequential(
        [
            keras_svp.SVPDense(32, projection_dropout=0.0),
            keras_svp.SVPDense(32, projection_dropout=0.0),
            keras.layers.Dense(10),
        ]
    )
    losses = {
        "sparse": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "one_hot": keras.losses.CategoricalCrossentropy(from_logits=True),
    }
    net.compile(keras.optimizers.SGD(0.1), losses[loss])
    return net


class Batches(keras.utils.PyDataset):
    def __init__(self, arrays):
        super().__init__()
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0]) // BATCH

    def __getitem__(self, index):
        part = slice(index * BATCH, (index + 1) * BATCH)
        return tuple(a[part] for a in self.arrays)


def tf_dataset(arrays):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(arrays).batch(BATCH)


def torch_loader(arrays):
    import torch

    tensors = [torch.from_numpy(np.asarray(a)) for a in arrays]
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*tensors), batch_size=BATCH
    )


def arrays_fit(net, arrays):
    x, y, *weights = arrays
    sample_weight = weights[0] if weights else None
    return net.fit(
        x, y, sample_weight=sample_weight, batch_size=BATCH, shuffle=False, verbose=0
    )


SOURCES = {
    "arrays": arrays_fit,
    "tf.data": lambda net, arrays: net.fit(tf_dataset(arrays), verbose=0),
    # fit shuffles the order of a PyDataset's batches unless told not to.
    "PyDataset": lambda net, arrays: net.fit(Batches(arrays), shuffle=False, verbose=0),
    "DataLoader": lambda net, arrays: net.fit(torch_loader(arrays), verbose=0),
}


def trained_weights(source, arrays, loss="sparse"):
    net = model(loss)
    SOURCES[source](net, arrays)
    return [keras.ops.convert_to_numpy(w) for w in net.trainable_weights]


@pytest.fixture
def data(digits):
    (x, y), _ = digits
    weights = np.random.default_rng(0).random(256).astype("float32")
    return x[:256], y[:256], weights


@pytest.mark.parametrize("source", ["tf.data", "PyDataset", "DataLoader"])
def test_every_input_kind_trains_as_arrays_do(data, source):
    x, y, weights = data
    for arrays in [(x, y), (x, y, weights)]:
        expected = trained_weights("arrays", arrays)
        got = trained_weights(source, arrays)
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_one_hot_labels_train_as_sparse_labels_do(data):
    x, y, _ = data
    one_hot = np.eye(10, dtype="float32")[y]
    for a, b in zip(
        trained_weights("arrays", (x, y)),
        trained_weights("arrays", (x, one_hot), loss="one_hot"),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sample_weights_change_training(data):
    x, y, weights = data
    unweighted = trained_weights("arrays", (x, y))
    weighted = trained_weights("arrays", (x, y, weights))
    assert not np.allclose(unweighted[0], weighted[0])
