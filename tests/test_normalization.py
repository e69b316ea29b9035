import keras
import numpy as np
import pytest

from keras_svp.layers.normalization import LayerNormalization


@pytest.mark.parametrize(
    "shape, axis", [((4, 6), -1), ((2, 3, 5), -1), ((2, 3, 5), [1, 2])]
)
def test_matches_keras_layer_normalization(shape, axis):
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal(shape) + 1).astype("float32")
    ours, theirs = (
        LayerNormalization(axis=axis),
        keras.layers.LayerNormalization(axis=axis),
    )
    ours.build(shape), theirs.build(shape)
    for w in ours.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)),
        keras.ops.convert_to_numpy(theirs(x)),
        atol=1e-5,
    )


def test_config_round_trip_and_mixed_precision():
    layer = LayerNormalization(epsilon=1e-5, dtype="mixed_float16")
    clone = LayerNormalization.from_config(layer.get_config())
    assert clone.epsilon == 1e-5
    y = layer(np.ones((2, 4), "float16") * 1e3)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
