from keras_svp.layers.block import SVPBlock
from keras_svp.layers.conv import SVPConv2D
from keras_svp.layers.dense import SVPDense
from keras_svp.layers.unit import SVPUnit

__all__ = ["SVPBlock", "SVPConv2D", "SVPDense", "SVPUnit"]
