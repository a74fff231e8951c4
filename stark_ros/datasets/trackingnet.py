"""TrackingNet layout (EVALUATION_FACTS.md section 4).

``<root>/TEST/`` and ``<root>/TRAIN_0`` .. ``TRAIN_11``, each with ``anno/<video>.txt`` (x,y,w,h, comma
separated) and ``frames/<video>/0.jpg, 1.jpg, ...`` (numbered from 0, not zero-padded: read in numeric order).
The ``TEST`` annotations give frame 0 only: the other rows are NaN. A root that is itself one chunk (``anno/``
and ``frames/`` directly inside) is read as that chunk.
"""
import os
import re

import numpy as np

from .annotation import check_count, list_frames, natural_key, read_rows, subfolders, visible_boxes
from .base import DatasetError, IndexedDataset, Sequence

_CHUNK = re.compile(r'^(TEST|TRAIN_\d+)$')


def is_trackingnet_chunk(folder):
    """True for a folder with ``anno/`` (holding ``*.txt``) and ``frames/``."""
    anno = os.path.join(folder, 'anno')
    return (os.path.isdir(anno) and os.path.isdir(os.path.join(folder, 'frames'))
            and any(n.endswith('.txt') for n in os.listdir(anno)))


def trackingnet_chunks(root):
    """Chunk folder names (``TEST``, ``TRAIN_k``) directly under ``root`` that hold a TrackingNet chunk."""
    return [n for n in subfolders(root) if _CHUNK.match(n) and is_trackingnet_chunk(os.path.join(root, n))]


class TrackingNetDataset(IndexedDataset):
    """TrackingNet videos of the chosen chunks.

    Args:
        root: the TrackingNet folder (holding ``TEST`` / ``TRAIN_k``) or one chunk folder.
        chunks: chunk names to read, e.g. ``['TRAIN_0', 'TRAIN_1']``; default: ``TEST`` if present, otherwise
            every ``TRAIN_k`` present.
    Raises:
        DatasetError: ``root`` missing, a requested chunk missing, or no video found.
    """

    name = 'trackingnet'

    def __init__(self, root, chunks=None):
        super().__init__(root)
        if is_trackingnet_chunk(self.root):
            folders = [self.root]
        else:
            present = trackingnet_chunks(self.root)
            if chunks is None:
                chunks = ['TEST'] if 'TEST' in present else [c for c in present if c != 'TEST']
            absent = [c for c in chunks if c not in present]
            if absent:
                raise DatasetError('TrackingNet chunk(s) %s not found under %s (present: %s)'
                                   % (', '.join(absent), self.root, ', '.join(present) or 'none'))
            folders = [os.path.join(self.root, c) for c in chunks]
        self.chunks = [os.path.basename(f) for f in folders]
        for folder in folders:
            anno = os.path.join(folder, 'anno')
            for file in sorted((n for n in os.listdir(anno) if n.endswith('.txt')), key=natural_key):
                self._index[file[:-4]] = (folder, os.path.join(anno, file))
        self._require_sequences('TEST/anno/<video>.txt and TEST/frames/<video>/0.jpg ...')

    def _load(self, name, location):
        folder, annotation = location
        frames = list_frames(os.path.join(folder, 'frames', name))
        boxes = read_rows(annotation)
        if len(boxes) == 1 and len(frames) > 1:          # TEST: frame 0 only
            boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
        check_count(boxes, frames, annotation)
        return Sequence(name, frames, boxes, visible_boxes(boxes), self.name)
