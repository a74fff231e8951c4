"""OTB layout (OTB-2013 / OTB-2015 and the many repositories that bundle sequences like it).

``<root>/<seq>/img/0001.jpg ...`` and ``<root>/<seq>/groundtruth_rect.txt`` (x,y,w,h per line, comma, tab or
space separated, 1-based pixel coordinates kept as they are). A folder with two targets has
``groundtruth_rect.1.txt`` and ``groundtruth_rect.2.txt`` (OTB's Jogging, Skating2): they become the sequences
``<seq>-1`` and ``<seq>-2``.

A few OTB-2015 sequences annotate only a sub-range of the frames in ``img/`` (EVALUATION_FACTS.md section 4:
David covers frames 300..770); :data:`OTB_FRAME_RANGES` lists them and the range is applied when the frame and
box counts say the folder is the full one. Any other count mismatch is an error naming the file.
"""
import os
import re

from .annotation import check_count, list_frames, read_rows, subfolders, visible_boxes
from .base import IndexedDataset, Sequence

#: 1-based inclusive frame ranges of OTB-2015 sequences whose ground truth covers part of ``img/``.
OTB_FRAME_RANGES = {'david': (300, 770), 'football1': (1, 74), 'freeman3': (1, 460), 'freeman4': (1, 283),
                    'diving': (1, 215)}

_MULTI = re.compile(r'^groundtruth_rect\.(\d+)\.txt$')


def otb_annotation_files(folder):
    """``[(suffix, path)]`` of the ground-truth files of one OTB sequence folder (suffix '' for a single target);
    empty when the folder is not an OTB sequence (no ``img/`` or no ``groundtruth_rect*.txt``)."""
    if not os.path.isdir(os.path.join(folder, 'img')):
        return []
    single = os.path.join(folder, 'groundtruth_rect.txt')
    if os.path.isfile(single):
        return [('', single)]
    found = sorted((int(m.group(1)), n) for m in map(_MULTI.match, os.listdir(folder)) if m for n in [m.group(0)])
    return [('-%d' % k, os.path.join(folder, n)) for k, n in found]


class OTBDataset(IndexedDataset):
    """Every OTB sequence folder directly under ``root``.

    Raises:
        DatasetError: ``root`` missing or holding no OTB sequence.
    """

    name = 'otb'

    def __init__(self, root):
        super().__init__(root)
        for folder in subfolders(self.root):
            path = os.path.join(self.root, folder)
            for suffix, annotation in otb_annotation_files(path):
                self._index[folder + suffix] = (path, annotation)
        self._require_sequences('<seq>/img/*.jpg and <seq>/groundtruth_rect.txt')

    def _load(self, name, location):
        folder, annotation = location
        frames = list_frames(os.path.join(folder, 'img'))
        boxes = read_rows(annotation)
        span = OTB_FRAME_RANGES.get(os.path.basename(folder).lower())
        if span and len(frames) != len(boxes) and len(frames) >= span[1] and len(boxes) == span[1] - span[0] + 1:
            frames = frames[span[0] - 1:span[1]]
        check_count(boxes, frames, annotation)
        return Sequence(name, frames, boxes, visible_boxes(boxes), self.name)
