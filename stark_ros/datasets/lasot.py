"""LaSOT layout (EVALUATION_FACTS.md section 4).

``<root>/<class>/<class>-<n>/img/00000001.jpg ...``, ``groundtruth.txt`` (x,y,w,h, comma separated),
``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated 0/1 line each), ``nlp.txt``. The test-split
download puts the sequences directly under the root (``<root>/<class>-<n>/``); both are read.

The test split is the 280 sequences listed by the LaSOT toolkit (:data:`TEST_SEQUENCES`, read from
``lasot_test.txt`` beside this module). ``Sequence.visible`` is False where the target is fully occluded or out of
view; ``Sequence.extra`` holds both flags as bool arrays (the LaSOT protocol removes those frames).
"""
import os

import numpy as np

from .annotation import check_count, list_frames, read_flags, read_list, read_rows, subfolders
from .base import DatasetError, IndexedDataset, Sequence

TEST_SEQUENCES = tuple(read_list(os.path.join(os.path.dirname(__file__), 'lasot_test.txt')))


def is_lasot_sequence(folder):
    """True for a folder with ``img/``, ``groundtruth.txt`` and ``full_occlusion.txt`` or ``out_of_view.txt``."""
    return (os.path.isdir(os.path.join(folder, 'img')) and os.path.isfile(os.path.join(folder, 'groundtruth.txt'))
            and any(os.path.isfile(os.path.join(folder, f)) for f in ('full_occlusion.txt', 'out_of_view.txt')))


class LaSOTDataset(IndexedDataset):
    """LaSOT sequences under ``root``.

    Args:
        root: the LaSOT folder (class folders) or the test-split folder (sequence folders).
        split: ``'test'`` (the 280 test sequences; an error if any is missing), ``'all'`` (every sequence on
            disk: e.g. training), or ``'auto'`` (``'test'`` when all 280 are present, otherwise ``'all'``).
    Attributes:
        split: the split actually read (``'test'`` or ``'all'``).
    Raises:
        DatasetError: ``root`` missing, no sequence found, or test sequences missing with ``split='test'``.
    """

    name = 'lasot'

    def __init__(self, root, split='auto'):
        super().__init__(root)
        if split not in ('auto', 'test', 'all'):
            raise ValueError("LaSOT split must be 'auto', 'test' or 'all', got %r" % (split,))
        found = {}
        for name in subfolders(self.root):
            path = os.path.join(self.root, name)
            if is_lasot_sequence(path):
                found[name] = path
            else:
                for inner in subfolders(path):
                    if is_lasot_sequence(os.path.join(path, inner)):
                        found[inner] = os.path.join(path, inner)
        missing = [n for n in TEST_SEQUENCES if n not in found]
        if split == 'test' and missing:
            raise DatasetError('LaSOT test split: %d of the %d test sequences are missing under %s (first: %s); '
                               "read what is there with split 'all'"
                               % (len(missing), len(TEST_SEQUENCES), self.root, ', '.join(missing[:5])))
        self.split = 'test' if split == 'test' or (split == 'auto' and not missing) else 'all'
        names = TEST_SEQUENCES if self.split == 'test' else list(found)
        self._index = {n: found[n] for n in names}
        self._require_sequences('<class>/<class>-<n>/img/*.jpg, groundtruth.txt, full_occlusion.txt, out_of_view.txt')

    def _load(self, name, folder):
        annotation = os.path.join(folder, 'groundtruth.txt')
        frames = list_frames(os.path.join(folder, 'img'))
        boxes = read_rows(annotation)
        check_count(boxes, frames, annotation)
        extra = {}
        for key in ('full_occlusion', 'out_of_view'):
            path = os.path.join(folder, key + '.txt')
            if os.path.isfile(path):
                extra[key] = read_flags(path, len(frames)).astype(bool)
            else:
                extra[key] = np.zeros(len(frames), dtype=bool)
        visible = ~(extra['full_occlusion'] | extra['out_of_view'])
        return Sequence(name, frames, boxes, visible, self.name, extra)

