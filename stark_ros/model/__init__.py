"""The STARK networks (S50, ST50, ST101, Lightning) and checkpoint loading.

One module per part, each with a ``build_*`` (DETR style): :mod:`.backbone`, :mod:`.position_encoding`,
:mod:`.transformer`, :mod:`.heads`, assembled in :mod:`.stark`; :mod:`.checkpoint` reads official and MMTracking
files; :mod:`.synthetic` makes deterministic weights for runs without a trained checkpoint.
"""
from .checkpoint import load_network
from .build import VARIANT_NAMES, build_network
from .lightning import StarkLightning, build_stark_lightning, fuse_repvgg
from .stark import VARIANTS, Stark, build_stark

__all__ = ['VARIANTS', 'VARIANT_NAMES', 'Stark', 'StarkLightning', 'build_network', 'build_stark',
           'build_stark_lightning', 'fuse_repvgg', 'load_network']
