"""The STARK networks (S50, ST50, ST101, Lightning, and the project's own lite0) and checkpoint loading.

One module per part, each with a ``build_*`` (DETR style): :mod:`.backbone`, :mod:`.position_encoding`,
:mod:`.transformer`, :mod:`.heads`, assembled in :mod:`.stark`; :mod:`.efficientnet` is lite0's ImageNet
EfficientNet-Lite0 backbone (:func:`load_imagenet_backbone` initialises it for training); :mod:`.checkpoint`
reads official and MMTracking files; :mod:`.synthetic` makes deterministic weights for runs without a trained
checkpoint.
"""
from .checkpoint import load_network
from .build import VARIANT_NAMES, build_network
from .efficientnet import load_imagenet_backbone
from .lightning import StarkLightning, build_stark_lightning, fuse_repvgg
from .stark import VARIANTS, Stark, build_stark

__all__ = ['VARIANTS', 'VARIANT_NAMES', 'Stark', 'StarkLightning', 'build_network', 'build_stark',
           'build_stark_lightning', 'fuse_repvgg', 'load_imagenet_backbone', 'load_network']
