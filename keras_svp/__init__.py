"""keras-svp: train Keras models with Stochastic Variational Propagation.

Subpackages: `keras_svp.applications` (ready-made MLP, VGG and ViT
builders), `keras_svp.datasets` (data loaders) and `keras_svp.diagnostics`
(per-unit accuracy, losses and plots).
"""

# Subpackages, importable as attributes (`keras_svp.applications.vit(...)`).
from keras_svp import applications
from keras_svp import datasets
from keras_svp import diagnostics
from keras_svp.layers import SVPBlock
from keras_svp.layers import SVPConv2D
from keras_svp.layers import SVPDense
from keras_svp.layers import SVPUnit
from keras_svp.losses import alignment_loss
from keras_svp.losses import cosine_similarity_matrix
from keras_svp.losses import local_prediction_loss
from keras_svp.models import SVPModel
from keras_svp.models import SVPSequential
from keras_svp.projections import RandomProjection
from keras_svp.version import __version__

__all__ = [
    "RandomProjection",
    "SVPBlock",
    "SVPConv2D",
    "SVPDense",
    "SVPModel",
    "SVPSequential",
    "SVPUnit",
    "__version__",
    "applications",
    "datasets",
    "diagnostics",
    "alignment_loss",
    "cosine_similarity_matrix",
    "local_prediction_loss",
]
