import keras
import numpy as np
import pytest

# Scripts that tests run in fresh processes, not test modules.
collect_ignore_glob = ["workers/*"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits, scaled to [0, 1], a fixed 1500/297 split."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order].astype("int32")
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])
