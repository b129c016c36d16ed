"""The papers' nets, the small bundled nets, the model sets and checkpoints, training.

Example:
    >>> from vizlib.models import alexnet
    >>> alexnet().vizlib_layers["c5"]
    'features.11'
"""

from .bundled_nets import BUNDLED_BUILDERS, FMNIST_INPUT_SIZE, alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from .nets import ARCHITECTURES, ZFNet, alexnet, alexnet_original, vgg16, zfnet

__all__ = [
    "ARCHITECTURES", "ZFNet", "alexnet", "alexnet_original", "vgg16", "zfnet",
    "BUNDLED_BUILDERS", "FMNIST_INPUT_SIZE", "alexnet_fmnist", "vgg_fmnist", "zfnet_fmnist",
]
