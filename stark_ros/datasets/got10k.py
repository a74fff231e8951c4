"""GOT-10k layout (EVALUATION_FACTS.md section 4): one split folder (``train``, ``val`` or ``test``).

``<split>/list.txt`` (sequence names, in order), ``<split>/<seq>/00000001.jpg ...``, ``<seq>/groundtruth.txt``
(x,y,w,h, 0-based pixels), and per-frame ``absence.label`` (1 = target absent), ``cover.label`` (0..8, visible
ratio = cover / 8), ``cut_by_image.label``, ``meta_info.ini``. The test split gives the ground truth of frame 0
only: the other rows are NaN.

``Sequence.visible`` is ``absence == 0`` (when the file exists), ``Sequence.extra`` holds ``'cover'`` and
``'absence'`` (int arrays) when their files exist: the GOT-10k protocol keeps the frames with ``cover > 0``.
"""
import os

import numpy as np

from .annotation import (check_count, list_frames, missing_listed, read_flags, read_list, read_rows, subfolders,
                         visible_boxes)
from .base import IndexedDataset, Sequence

GOT10K_MARKERS = ('absence.label', 'cover.label', 'cut_by_image.label', 'meta_info.ini')


def is_got10k_sequence(folder):
    """True for a folder with ``groundtruth.txt`` and at least one of GOT-10k's label / meta files."""
    return (os.path.isfile(os.path.join(folder, 'groundtruth.txt'))
            and any(os.path.isfile(os.path.join(folder, m)) for m in GOT10K_MARKERS))


class GOT10kDataset(IndexedDataset):
    """The sequences of one GOT-10k split folder, in ``list.txt`` order (folder order without the file).

    Attributes:
        split: the split folder's name (``'val'``, ``'test'``, ``'train'`` or another name).
    Raises:
        DatasetError: ``root`` missing, a listed sequence missing, or no sequence found.
    """

    name = 'got10k'

    def __init__(self, root):
        super().__init__(root)
        self.split = os.path.basename(self.root.rstrip(os.sep)).lower()
        listed = os.path.join(self.root, 'list.txt')
        if os.path.isfile(listed):
            for name in read_list(listed):
                if not os.path.isfile(os.path.join(self.root, name, 'groundtruth.txt')):
                    raise missing_listed(listed, name)
                self._index[name] = os.path.join(self.root, name)
        else:
            for name in subfolders(self.root):
                if is_got10k_sequence(os.path.join(self.root, name)):
                    self._index[name] = os.path.join(self.root, name)
        self._require_sequences('<split>/list.txt, <seq>/groundtruth.txt, <seq>/absence.label, <seq>/*.jpg')

    def _load(self, name, folder):
        annotation = os.path.join(folder, 'groundtruth.txt')
        frames = list_frames(folder)
        boxes = read_rows(annotation)
        if len(boxes) == 1 and len(frames) > 1:          # test split: frame 0 only
            boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
        check_count(boxes, frames, annotation)
        extra = {}
        for key in ('absence', 'cover'):
            path = os.path.join(folder, key + '.label')
            if os.path.isfile(path):
                extra[key] = read_flags(path, len(frames))
        visible = extra['absence'] == 0 if 'absence' in extra else visible_boxes(boxes)
        return Sequence(name, frames, boxes, visible, self.name, extra)
