"""Dataset readers shared by evaluation and training: one module per on-disk layout behind :mod:`.base`.

Typical use::

    from stark_ros.datasets import open_dataset
    dataset = open_dataset('/data/GOT-10k/val')          # layout detected: GOT10kDataset
    for sequence in dataset:                             # Sequence: name, frames, boxes (xywh), visible, extra
        image = read_frame(sequence.frames[0])           # (H, W, 3) uint8 RGB

Readers (all take the dataset folder as first argument): :class:`OTBDataset`, :class:`VOTDataset`,
:class:`GOT10kDataset`, :class:`LaSOTDataset` (``split``), :class:`TrackingNetDataset` (``chunks``),
:class:`FolderDataset`.
"""
from .base import DatasetError, IndexedDataset, MissingFrameError, Sequence, SequenceDataset, read_frame
from .detect import READERS, detect_format, detect_layouts, open_dataset
from .folder import FolderDataset
from .got10k import GOT10kDataset
from .lasot import LaSOTDataset
from .otb import OTBDataset
from .trackingnet import TrackingNetDataset
from .vot import VOTDataset

__all__ = ['DatasetError', 'FolderDataset', 'GOT10kDataset', 'IndexedDataset', 'LaSOTDataset', 'MissingFrameError',
           'OTBDataset', 'READERS', 'Sequence', 'SequenceDataset', 'TrackingNetDataset', 'VOTDataset',
           'detect_format', 'detect_layouts', 'open_dataset', 'read_frame']
