from keras_svp.models.svp_model import SVPModel
from keras_svp.models.svp_model import SVPSequential

__all__ = ["SVPModel", "SVPSequential"]
