"""Ready-made SVP networks: the paper's MLP, VGG-11 and a block-wise ViT.

Every builder returns an uncompiled `SVPSequential`; `mode="bp"` gives the
same network trained end to end, for comparisons.
"""

from keras_svp.applications.mlp_builder import mlp
from keras_svp.applications.vgg_builder import VGG11
from keras_svp.applications.vgg_builder import vgg
from keras_svp.applications.vgg_builder import vgg11
from keras_svp.applications.vit_builder import vit
from keras_svp.applications.vit_layers import ClassToken
from keras_svp.applications.vit_layers import PatchEmbedding
from keras_svp.applications.vit_layers import TokenPooling
from keras_svp.applications.vit_layers import TransformerBlock

__all__ = [
    "VGG11",
    "ClassToken",
    "PatchEmbedding",
    "TokenPooling",
    "TransformerBlock",
    "mlp",
    "vgg",
    "vgg11",
    "vit",
]
