"""The STARK networks (S50, ST50, ST101) and checkpoint loading.

One module per part, each with a ``build_*`` (DETR style): :mod:`.backbone`, :mod:`.position_encoding`,
:mod:`.transformer`, :mod:`.heads`, assembled in :mod:`.stark`; :mod:`.checkpoint` reads official and MMTracking
files; :mod:`.synthetic` makes deterministic weights for runs without a trained checkpoint.
"""
from .checkpoint import load_network, resolve_device
from .stark import VARIANTS, Stark, build_stark

__all__ = ['VARIANTS', 'Stark', 'build_stark', 'load_network', 'resolve_device']
