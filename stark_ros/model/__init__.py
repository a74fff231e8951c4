"""The STARK networks (S50, ST50, ST101, Lightning, and the project's own lite0) and checkpoint loading.

One module per part, each with a ``build_*`` (DETR style): :mod:`.backbone`, :mod:`.position_encoding`,
:mod:`.transformer`, :mod:`.heads`, assembled in :mod:`.stark`; :mod:`.efficientnet` is lite0's ImageNet
EfficientNet-Lite0 backbone (:func:`load_imagenet_backbone` initialises it for training); :mod:`.checkpoint`
reads official and MMTracking files; :mod:`.default_model` says what an empty checkpoint means (the shipped
lite0 model) and :mod:`.synthetic` makes the deterministic test weights that ``checkpoint='synthetic'`` selects.
"""
from .checkpoint import load_network
from .default_model import DEFAULT_CHECKPOINT, SYNTHETIC, resolve_checkpoint
from .build import VARIANT_NAMES, build_network
from .efficientnet import load_imagenet_backbone
from .lightning import StarkLightning, build_stark_lightning, fuse_repvgg
from .stark import VARIANTS, Stark, build_stark

__all__ = ['DEFAULT_CHECKPOINT', 'SYNTHETIC', 'VARIANTS', 'VARIANT_NAMES', 'Stark', 'StarkLightning', 'build_network', 'build_stark',
           'build_stark_lightning', 'fuse_repvgg', 'load_imagenet_backbone', 'load_network',
           'resolve_checkpoint']
