"""One small SVP trainer class per backend, chosen once at import.

Each trainer subclasses `keras.Model` for its backend and overrides only the
training and evaluation steps for `mode="svp"`; the model logic they
differentiate (`unit_forward`, `head_forward`) is backend-agnostic and lives
in `SVPModel`.
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_svp.models.trainers.tensorflow_trainer import (
        TensorFlowSVPTrainer as SVPTrainer,
    )
elif _BACKEND == "jax":
    from keras_svp.models.trainers.jax_trainer import JAXSVPTrainer as SVPTrainer
elif _BACKEND == "torch":
    from keras_svp.models.trainers.torch_trainer import TorchSVPTrainer as SVPTrainer
else:
    raise ImportError(
        f"keras-svp supports the tensorflow, jax and torch backends, but "
        f"KERAS_BACKEND is {_BACKEND!r}."
    )

__all__ = ["SVPTrainer"]
