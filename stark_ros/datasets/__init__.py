"""Dataset readers shared by evaluation and training: one module per on-disk layout behind :mod:`.base`."""
from .base import DatasetError, MissingFrameError, Sequence, SequenceDataset, read_frame

__all__ = ['DatasetError', 'MissingFrameError', 'Sequence', 'SequenceDataset', 'read_frame']
