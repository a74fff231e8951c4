"""A plain folder of sequences: the simplest layout for one's own data.

``<root>/<seq>/groundtruth.txt`` (x,y,w,h per frame, comma, tab or space separated; ``nan`` or a zero size
where the target is not visible) and the frames, sorted by name, in ``<seq>/img/`` or directly in ``<seq>/``.
"""
import os

from .annotation import check_count, frame_folder, list_frames, read_rows, subfolders, visible_boxes
from .base import IndexedDataset, Sequence


def is_plain_sequence(folder):
    """True for a folder with ``groundtruth.txt`` and frames (in ``img/`` or beside it)."""
    return os.path.isfile(os.path.join(folder, 'groundtruth.txt')) and frame_folder(folder, 'img') is not None


class FolderDataset(IndexedDataset):
    """Every ``<seq>/groundtruth.txt`` + frames folder directly under ``root``, in natural name order.

    Raises:
        DatasetError: ``root`` missing or holding no such sequence.
    """

    name = 'folder'

    def __init__(self, root):
        super().__init__(root)
        for name in subfolders(self.root):
            if is_plain_sequence(os.path.join(self.root, name)):
                self._index[name] = os.path.join(self.root, name)
        self._require_sequences('<seq>/groundtruth.txt and frames in <seq>/img/ or <seq>/')

    def _load(self, name, folder):
        annotation = os.path.join(folder, 'groundtruth.txt')
        frames = list_frames(frame_folder(folder, 'img'))
        boxes = read_rows(annotation)
        check_count(boxes, frames, annotation)
        return Sequence(name, frames, boxes, visible_boxes(boxes), self.name)
