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
