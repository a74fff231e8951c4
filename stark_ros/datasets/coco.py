"""COCO-style still images with boxes: every non-crowd annotation is a one-frame sequence.

Layouts:
* COCO 2017: ``ROOT/annotations/instances_train2017.json`` and ``ROOT/train2017/*.jpg``
  (:meth:`CocoDataset.coco2017`);
* a user's folder of still images with a COCO-style json (``images``: ``id``, ``file_name`` relative to the
  folder; ``annotations``: ``id``, ``image_id``, ``bbox`` ``[x, y, w, h]`` in pixels, optional ``iscrowd``).

As in the official COCO path (STARK_FACTS.md section 12b) an annotation is visible when its width and height are
> 0. The json is read once and reduced to NumPy arrays (box, image, id per annotation): COCO train2017 has
860k annotations and no :class:`~.base.Sequence` is built before it is asked for; the arrays are shared, not
copied, by forked DataLoader workers.
"""
import json
import os

import numpy as np

from .base import DatasetError, Sequence, SequenceDataset


class _AnnotationNames:
    """The sequence names (annotation ids as strings, ascending), computed on access instead of 860k stored strings."""

    def __init__(self, ids):
        self._ids = ids

    def __len__(self):
        return len(self._ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [str(i) for i in self._ids[index]]
        return str(self._ids[index])

    def __iter__(self):
        return (str(i) for i in self._ids)


def _field(annotation, key, path, ident):
    if key not in annotation:
        raise DatasetError('%s: annotation %s has no %r' % (path, ident, key))
    return annotation[key]


class CocoDataset(SequenceDataset):
    """Still images with COCO-json boxes; sequence name = annotation id; ``is_video`` False.

    Args:
        images: folder the json's ``file_name`` entries are relative to.
        annotations: the COCO-style json file.
        name: dataset name in the sequences and in errors (``'coco'``, or e.g. ``'images'`` for a user's folder).
    Raises:
        DatasetError: the folder or the json is missing, the json is malformed, or an image / annotation entry
            lacks a field or has a malformed box (the message names the file and the annotation id).
    """

    is_video = False

    def __init__(self, images, annotations, name='coco'):
        self.name = name
        self.images_root = os.path.abspath(images)
        self.annotation_file = os.path.abspath(annotations)
        if not os.path.isdir(self.images_root):
            raise DatasetError('image folder %s does not exist' % self.images_root)
        data = self._read_json(self.annotation_file)
        self._file_names = self._index_images(data['images'])
        self._ids, self._image_ids, self._boxes = self._index_annotations(data['annotations'])

    @classmethod
    def coco2017(cls, root, split='train2017'):
        """COCO 2017 in its standard layout: ``root/annotations/instances_<split>.json``, ``root/<split>/``."""
        return cls(os.path.join(root, split), os.path.join(root, 'annotations', 'instances_%s.json' % split),
                   name='coco')

    @staticmethod
    def _read_json(path):
        if not os.path.isfile(path):
            raise DatasetError('annotation file %s does not exist' % path)
        try:
            with open(path, encoding='utf-8') as handle:
                data = json.load(handle)
        except (ValueError, UnicodeDecodeError) as error:
            raise DatasetError('%s is not valid json: %s' % (path, error)) from None
        if not isinstance(data, dict) or not isinstance(data.get('images'), list) \
                or not isinstance(data.get('annotations'), list):
            raise DatasetError('%s: a COCO annotation file needs lists "images" and "annotations"' % path)
        return data

    def _index_images(self, images):
        file_names = {}
        for position, image in enumerate(images):
            if not isinstance(image, dict) or 'id' not in image or not isinstance(image.get('file_name'), str):
                raise DatasetError('%s: image entry #%d needs "id" and "file_name"' % (self.annotation_file, position))
            file_names[image['id']] = image['file_name']
        return file_names

    def _index_annotations(self, annotations):
        ids, image_ids, boxes, seen = [], [], [], set()
        path = self.annotation_file
        for position, annotation in enumerate(annotations):
            if not isinstance(annotation, dict):
                raise DatasetError('%s: annotation #%d is not an object' % (path, position))
            ident = annotation.get('id', '#%d' % position)
            if annotation.get('iscrowd', 0):
                continue
            if not isinstance(ident, int) or ident in seen:
                raise DatasetError('%s: annotation %s needs a unique integer "id"' % (path, ident))
            seen.add(ident)
            image_id = _field(annotation, 'image_id', path, ident)
            if image_id not in self._file_names:
                raise DatasetError('%s: annotation %s refers to image %r, which "images" does not list'
                                   % (path, ident, image_id))
            box = _field(annotation, 'bbox', path, ident)
            try:
                box = [float(v) for v in box]
            except (TypeError, ValueError):
                box = []
            if len(box) != 4 or not np.isfinite(box).all():
                raise DatasetError('%s: annotation %s has bbox %r, expected 4 finite numbers [x, y, w, h]'
                                   % (path, ident, annotation['bbox']))
            ids.append(ident)
            image_ids.append(image_id)
            boxes.append(box)
        if not ids:
            raise DatasetError('%s holds no non-crowd annotation' % path)
        image_index = {image_id: i for i, image_id in enumerate(self._file_names)}
        self._file_names = list(self._file_names.values())
        order = np.argsort(ids, kind='stable')  # sorted ids: name -> position by binary search
        return (np.asarray(ids, dtype=np.int64)[order],
                np.asarray([image_index[i] for i in image_ids], dtype=np.int64)[order],
                np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order])

    def sequence_names(self):
        return _AnnotationNames(self._ids)

    def __len__(self):
        return len(self._ids)

    def _find(self, name):
        try:
            ident = int(name)
        except (TypeError, ValueError):
            raise KeyError(name) from None
        position = int(np.searchsorted(self._ids, ident))
        if position == len(self._ids) or self._ids[position] != ident:
            raise KeyError(name)
        return position

    def load_sequence(self, name):
        """The annotation ``name`` (its id, in increasing id order) as a one-frame :class:`~.base.Sequence`."""
        position = self._find(name)
        box = self._boxes[position:position + 1].copy()
        path = os.path.join(self.images_root, self._file_names[self._image_ids[position]])
        return Sequence(name=str(name), frames=(path,), boxes=box, visible=(box[:, 2] > 0) & (box[:, 3] > 0),
                        dataset=self.name)
