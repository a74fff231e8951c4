"""VOT short-term layout (VOT2013-2019 style; EVALUATION_FACTS.md section 4).

``<root>/list.txt`` (optional: the sequence order), ``<root>/<seq>/groundtruth.txt`` with one 8-value polygon
``x1,y1,...,x4,y4`` or 4-value rectangle ``x,y,w,h`` per frame (0-based pixels), frames in ``<seq>/color/`` or
directly in ``<seq>/`` (``%08d.jpg``). Polygons become their axis-aligned bounding boxes (min / max of the
corners, the usual VOT -> OTB conversion). Rows of NaN or of zero size (VOT long-term: target absent) are
``visible = False``. VOT2020+ mask annotations (``m...`` lines) are not read (an error names the line).
"""
import os

from .annotation import (check_count, frame_folder, list_frames, missing_listed, polygons_to_boxes, read_list,
                         read_rows, subfolders, visible_boxes)
from .base import IndexedDataset, Sequence


class VOTDataset(IndexedDataset):
    """The VOT sequences under ``root``, in ``list.txt`` order when the file exists.

    Raises:
        DatasetError: ``root`` missing, a listed sequence missing, or no sequence found.
    """

    name = 'vot'

    def __init__(self, root):
        super().__init__(root)
        listed = os.path.join(self.root, 'list.txt')
        names = read_list(listed) if os.path.isfile(listed) else subfolders(self.root)
        for name in names:
            folder = os.path.join(self.root, name)
            if os.path.isfile(os.path.join(folder, 'groundtruth.txt')) and frame_folder(folder, 'color'):
                self._index[name] = folder
            elif os.path.isfile(listed):
                raise missing_listed(listed, name)
        self._require_sequences('<seq>/groundtruth.txt and frames in <seq>/color/ or <seq>/')

    def _load(self, name, folder):
        annotation = os.path.join(folder, 'groundtruth.txt')
        frames = list_frames(frame_folder(folder, 'color'))
        boxes = polygons_to_boxes(read_rows(annotation, widths=(4, 8)))
        check_count(boxes, frames, annotation)
        return Sequence(name, frames, boxes, visible_boxes(boxes), self.name)

