"""What every dataset reader returns: sequences of frame paths with ground-truth boxes (pytracking style).

One reader per on-disk layout (OTB, VOT, GOT-10k, LaSOT, TrackingNet, COCO, plain folders) subclasses
:class:`SequenceDataset`; evaluation (one-pass runs, metrics) and training (sampler, processing) both read
datasets only through this interface. Readers never compute metrics.

Conventions:
* Boxes are ``(x, y, w, h)``: top-left corner and size in pixels, float64, kept exactly as the annotation file
  has them (OTB files are 1-based, VOT / GOT-10k / LaSOT 0-based; no reader shifts them, like the toolkits).
* A frame whose ground truth is unknown (test splits: only frame 0 is given) has a NaN row.
* ``visible`` is False where the annotation says the target is absent, fully occluded or out of view.
"""
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Dict, Iterator, Sequence as SequenceType, Tuple

import cv2
import numpy as np

from ..errors import StarkError


class DatasetError(StarkError):
    """A dataset folder or annotation is missing or malformed; the message names the file (and line)."""


class MissingFrameError(DatasetError):
    """A frame image listed by a sequence does not exist or cannot be decoded; the message names the file."""


@dataclass(frozen=True)
class Sequence:
    """One annotated sequence (a video, or a single image for image datasets such as COCO).

    Attributes:
        name: sequence name, unique within its dataset (the results file stem).
        frames: absolute frame paths in temporal order, length N.
        boxes: (N, 4) float64 ground truth ``(x, y, w, h)`` in pixels; NaN rows where unknown.
        visible: (N,) bool, target visible in the frame.
        dataset: name of the dataset (``'otb'``, ``'got10k'``, ...).
        extra: per-frame arrays a protocol needs, e.g. ``'cover'`` (N,) int 0..8 for GOT-10k, ``'full_occlusion'``
            and ``'out_of_view'`` (N,) bool for LaSOT.
    """

    name: str
    frames: Tuple[str, ...]
    boxes: np.ndarray
    visible: np.ndarray
    dataset: str = ''
    extra: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.frames)
        if self.boxes.shape != (n, 4):
            raise DatasetError('sequence %s: %d frames but ground truth of shape %s'
                               % (self.name, n, tuple(self.boxes.shape)))
        if self.visible.shape != (n,):
            raise DatasetError('sequence %s: %d frames but %d visibility flags'
                               % (self.name, n, self.visible.shape[0]))

    def __len__(self):
        return len(self.frames)

    @property
    def init_box(self):
        """Frame-0 ground truth ``(x, y, w, h)`` as a tuple of floats (the one-pass evaluation init box)."""
        return tuple(float(v) for v in self.boxes[0])


class SequenceDataset(ABC):
    """A collection of sequences read from one on-disk layout.

    Subclasses implement :meth:`sequence_names` and :meth:`load_sequence`; ``is_video`` is False for image
    datasets (every sequence has one frame), which the training sampler treats as in the official COCO path.
    """

    #: short layout name (``'otb'``, ``'vot'``, ``'got10k'``, ``'lasot'``, ``'trackingnet'``, ``'coco'``, ...)
    name = 'base'
    is_video = True

    @abstractmethod
    def sequence_names(self) -> SequenceType[str]:
        """All sequence names, in a stable order."""

    @abstractmethod
    def load_sequence(self, name: str) -> Sequence:
        """Read one sequence's frame list and annotations.

        Raises:
            KeyError: unknown name.
            DatasetError: missing or malformed annotation (the message names the file and line).
        """

    def __len__(self):
        return len(self.sequence_names())

    def __iter__(self) -> Iterator[Sequence]:
        for name in self.sequence_names():
            yield self.load_sequence(name)


class IndexedDataset(SequenceDataset):
    """A dataset whose sequences are found once, at construction, as ``{name: location}`` in ``self._index``.

    Subclasses fill ``self._index`` (insertion order = sequence order) and implement ``_load(name, location)``.
    """

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self._index = {}

    def sequence_names(self):
        return list(self._index)

    def load_sequence(self, name):
        if name not in self._index:
            raise KeyError('no sequence %r in %s dataset %s' % (name, self.name, self.root))
        return self._load(name, self._index[name])

    @abstractmethod
    def _load(self, name, location) -> Sequence:
        """Read the sequence ``name`` found at ``location``."""

    def _require_sequences(self, layout):
        if not self._index:
            raise DatasetError('no %s sequence under %s (expected %s)' % (self.name, self.root, layout))


def read_frame(path: str) -> np.ndarray:
    """Read one frame as an (H, W, 3) uint8 RGB array.

    Raises:
        MissingFrameError: the file does not exist or OpenCV cannot decode it (the message names the file).
    """
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        reason = 'does not exist' if not os.path.exists(path) else 'cannot be decoded'
        raise MissingFrameError('frame %s %s' % (path, reason))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
