import os

# TensorFlow keeps CPU memory statistics, which the memory benchmark's tests
# read, only with oneDNN's allocator: on by default on Intel CPUs, not on
# AMD's. It must be set before TensorFlow is imported (with Keras, below).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras
import numpy as np
import pytest

import keras_svp


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(keras=keras, np=np, keras_svp=keras_svp)
    doctest_namespace.update(
        {name: getattr(keras_svp, name) for name in keras_svp.__all__}
    )
