"""Writers of the two standard layouts the training readers read: GOT-10k (videos) and COCO (still images).

GOT-10k (one split folder, as the official ``GOT-10k/train``): ``list.txt`` (one sequence name per line),
``<seq>/00000001.jpg ...`` (1-based, 8 digits), ``<seq>/groundtruth.txt`` (``x,y,w,h`` per frame, 0-based
pixels, 4 decimals), ``absence.label`` (1 = target absent), ``cover.label`` (visible ratio in 9 levels: 0 =
fully occluded, 1 = (0, 15 %), 2 = [15, 30 %), ... 7 = [90, 100 %), 8 = fully visible), ``cut_by_image.label``
(1 = the box is cut by the image border) and ``meta_info.ini`` (its 11 lines in the official order, class
names on lines 6-10).

COCO 2017: ``annotations/instances_train2017.json`` (``images``, ``annotations`` with ``bbox`` = x,y,w,h in
pixels, ``area``, ``iscrowd`` 0, ``segmentation`` polygons, ``categories``) and the images in ``train2017/``;
``images/train2017`` links to the same folder, the other common place readers look for them.
"""
import json
import os
import shutil

import cv2
import numpy as np

JPEG_QUALITY = 92


def cover_level(visible_ratio):
    """GOT-10k cover label (0..8) of a visible ratio in [0, 1]."""
    if visible_ratio <= 0.0:
        return 0
    if visible_ratio >= 0.999:
        return 8
    return min(7, 1 + int(visible_ratio / 0.15))


def write_image(path, image):
    """Encode ``image`` (BGR uint8) to ``path`` (JPEG quality :data:`JPEG_QUALITY` for .jpg)."""
    if not cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError('cannot write %s' % path)


def link_or_copy(src, dst):
    """Hard-link ``src`` to ``dst`` (frames shared by several sequences take no extra space); copy if needed."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


class Got10kWriter:
    """Writes sequences into one GOT-10k split folder; :meth:`close` writes ``list.txt``."""

    def __init__(self, root):
        self.root = root
        self.names = []
        os.makedirs(root, exist_ok=True)

    def add(self, name, frames, boxes, absence=None, cover=None, meta=None):
        """Write one sequence.

        Args:
            name: sequence folder name.
            frames: list of N frames, each a BGR uint8 array (encoded) or a path to a JPEG (hard-linked).
            boxes: (N, 4) ``(x, y, w, h)`` pixels.
            absence: (N,) 0/1, default all 0; cover: (N,) 0..8, default all 8.
            meta: dict with ``object_class``, ``motion_class``, ``major_class``, ``root_class``,
                ``motion_adverb``, ``url`` (all optional strings).
        """
        boxes = np.asarray(boxes, np.float64)
        n = len(frames)
        if boxes.shape != (n, 4):
            raise ValueError('sequence %s: %d frames but boxes of shape %s' % (name, n, boxes.shape))
        absence = np.zeros(n, int) if absence is None else np.asarray(absence, int)
        cover = np.full(n, 8, int) if cover is None else np.asarray(cover, int)
        folder = os.path.join(self.root, name)
        os.makedirs(folder, exist_ok=True)
        for i, frame in enumerate(frames):
            dst = os.path.join(folder, '%08d.jpg' % (i + 1))
            if isinstance(frame, str):
                link_or_copy(frame, dst)
            else:
                write_image(dst, frame)
        first = frames[0] if not isinstance(frames[0], str) else cv2.imread(frames[0])
        height, width = first.shape[:2]
        cut = ((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 0] + boxes[:, 2] > width)
               | (boxes[:, 1] + boxes[:, 3] > height)).astype(int)
        _lines(os.path.join(folder, 'groundtruth.txt'), ['%.4f,%.4f,%.4f,%.4f' % tuple(b) for b in boxes])
        _lines(os.path.join(folder, 'absence.label'), ['%d' % v for v in absence])
        _lines(os.path.join(folder, 'cover.label'), ['%d' % v for v in cover])
        _lines(os.path.join(folder, 'cut_by_image.label'), ['%d' % v for v in cut])
        meta = meta or {}
        _lines(os.path.join(folder, 'meta_info.ini'), [
            '[METAINFO]', 'url: %s' % meta.get('url', ''), 'begin: 00:00:00', 'end: 00:00:00', 'anno_fps: 10Hz',
            'object_class: %s' % meta.get('object_class', 'object'),
            'motion_class: %s' % meta.get('motion_class', 'moving'),
            'major_class: %s' % meta.get('major_class', 'object'),
            'root_class: %s' % meta.get('root_class', 'object'),
            'motion_adverb: %s' % meta.get('motion_adverb', 'slowly'),
            'resolution: (%d, %d)' % (width, height)])
        self.names.append(name)

    def close(self):
        _lines(os.path.join(self.root, 'list.txt'), self.names)


class CocoWriter:
    """Collects images and boxes; :meth:`close` writes ``annotations/instances_train2017.json``."""

    def __init__(self, root, split='train2017'):
        self.root = root
        self.split = split
        self.images, self.annotations, self.categories = [], [], {}
        os.makedirs(os.path.join(root, split), exist_ok=True)
        os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)

    def category(self, name):
        if name not in self.categories:
            self.categories[name] = len(self.categories) + 1
        return self.categories[name]

    def add_image(self, file_name, image):
        """Write ``image`` (BGR uint8) as ``<split>/<file_name>``; return its image id."""
        write_image(os.path.join(self.root, self.split, file_name), image)
        image_id = len(self.images) + 1
        self.images.append({'id': image_id, 'file_name': file_name, 'width': int(image.shape[1]),
                            'height': int(image.shape[0])})
        return image_id

    def add_box(self, image_id, box, category, polygon=None):
        """Add one annotation: ``box`` (x, y, w, h) pixels; ``polygon`` flat [x1, y1, x2, y2, ...] or the box."""
        x, y, w, h = (float(v) for v in box)
        if polygon is None:
            polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
        self.annotations.append({'id': len(self.annotations) + 1, 'image_id': image_id,
                                 'category_id': self.category(category), 'bbox': [x, y, w, h], 'area': w * h,
                                 'iscrowd': 0, 'segmentation': [[round(float(v), 2) for v in polygon]]})

    def close(self):
        data = {'info': {'description': 'stark_ros own training data (regions as one-frame sequences)'},
                'licenses': [], 'images': self.images, 'annotations': self.annotations,
                'categories': [{'id': i, 'name': n, 'supercategory': 'object'} for n, i in self.categories.items()]}
        path = os.path.join(self.root, 'annotations', 'instances_%s.json' % self.split)
        with open(path + '.part', 'w') as f:
            json.dump(data, f)
        os.replace(path + '.part', path)
        alias = os.path.join(self.root, 'images', self.split)
        if not os.path.lexists(alias):
            os.makedirs(os.path.dirname(alias), exist_ok=True)
            os.symlink(os.path.join('..', self.split), alias)


def mask_polygon(mask, offset):
    """Largest outer contour of a bool mask as a flat polygon, shifted by ``offset`` (x, y); None if empty."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64) + offset
    return contour.ravel().tolist() if len(contour) >= 3 else None


def _lines(path, lines):
    with open(path, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))
