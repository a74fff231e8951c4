"""Small benchmark folders in each standard layout, written from real frames of ``../shared/eval``.

Every writer copies the source JPEG files unchanged (real frames) and writes annotations in the layout's own
format from known boxes, so a reader test can compare what it reads with what was written. Nothing here is
committed data: the folders live in pytest's tmp_path.
"""
import os
import re
import shutil

import cv2
import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The six real development sequences (never trained on); tests read them, nothing from them is committed.
SHARED_EVAL = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'eval')
#: The real hand-labelled training sequences (the shipped model's training and validation splits).
SHARED_TRAIN_REAL = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'train_real')


def shared_eval():
    """Path of ``../shared/eval``; skips the test when it is not beside the repository."""
    if not os.path.isfile(os.path.join(SHARED_EVAL, 'crossing', 'groundtruth_rect.txt')):
        pytest.skip('../shared/eval (real sequences) is not beside the repository')
    return SHARED_EVAL


def shared_train_real():
    """Path of ``../shared/train_real``; skips the test when it is not beside the repository."""
    if not os.path.isfile(os.path.join(SHARED_TRAIN_REAL, 'Walking2', 'groundtruth_rect.txt')):
        pytest.skip('../shared/train_real (real training sequences) is not beside the repository')
    return SHARED_TRAIN_REAL


def source_sequence(name='crossing', count=12):
    """``(frame paths, (count, 4) boxes)`` of the first ``count`` frames of a real sequence."""
    root = os.path.join(shared_eval(), name)
    frames = sorted(os.path.join(root, 'img', f) for f in os.listdir(os.path.join(root, 'img')))[:count]
    with open(os.path.join(root, 'groundtruth_rect.txt')) as handle:
        boxes = np.array([[float(v) for v in re.split(r'[,\s]+', line.strip())] for line in handle if line.strip()])
    boxes = boxes[:count]
    return frames, boxes


def _copy_frames(frames, folder, pattern, start=0):
    os.makedirs(folder, exist_ok=True)
    out = []
    for i, src in enumerate(frames):
        dst = os.path.join(folder, pattern % (i + start))
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def _write_rows(path, rows, sep=',', fmt='%g'):
    with open(path, 'w') as handle:
        for row in rows:
            handle.write(sep.join(fmt % v for v in row) + '\n')


def write_otb(root, name='crossing', count=12, sep='\t'):
    frames, boxes = source_sequence(name, count)
    written = _copy_frames(frames, os.path.join(root, name, 'img'), '%04d.jpg', start=1)
    _write_rows(os.path.join(root, name, 'groundtruth_rect.txt'), boxes, sep)
    return written, boxes


def box_polygons(boxes, inset=3.0):
    """Rotated-looking 8-value polygons whose axis-aligned bounding box is exactly ``boxes`` (x,y,w,h)."""
    x, y, w, h = boxes.T
    return np.stack([x + inset, y, x + w, y + inset, x + w - inset, y + h, x, y + h - inset], axis=1)


def write_vot(root, name='crossing', count=12, polygons=True):
    frames, boxes = source_sequence(name, count)
    written = _copy_frames(frames, os.path.join(root, name, 'color'), '%08d.jpg', start=1)
    _write_rows(os.path.join(root, name, 'groundtruth.txt'), box_polygons(boxes) if polygons else boxes)
    with open(os.path.join(root, 'list.txt'), 'a') as handle:
        handle.write(name + '\n')
    return written, boxes


def write_got10k(split_root, name='GOT-10k_Val_000001', source='crossing', count=12, test=False):
    """A GOT-10k split folder; frames 3 and 4 absent (cover 0), cover 8 elsewhere except frame 5 (cover 3)."""
    frames, boxes = source_sequence(source, count)
    folder = os.path.join(split_root, name)
    written = _copy_frames(frames, folder, '%08d.jpg', start=1)
    absence = np.zeros(count, int)
    cover = np.full(count, 8)
    absence[3:5], cover[3:5], cover[5] = 1, 0, 3
    _write_rows(os.path.join(folder, 'groundtruth.txt'), boxes[:1] if test else boxes, fmt='%.4f')
    if not test:
        _write_rows(os.path.join(folder, 'absence.label'), absence[:, None], fmt='%d')
        _write_rows(os.path.join(folder, 'cover.label'), cover[:, None], fmt='%d')
        _write_rows(os.path.join(folder, 'cut_by_image.label'), np.zeros((count, 1)), fmt='%d')
    height, width = cv2.imread(written[0]).shape[:2]
    with open(os.path.join(folder, 'meta_info.ini'), 'w') as handle:
        handle.write('[METAINFO]\nobject_class: person\nresolution: (%d, %d)\n' % (width, height))
    with open(os.path.join(split_root, 'list.txt'), 'a') as handle:
        handle.write(name + '\n')
    return written, boxes, absence, cover


def write_lasot(root, name='airplane-1', source='crossing', count=12, nested=True):
    """A LaSOT sequence; frame 2 fully occluded, frames 6 and 7 out of view."""
    frames, boxes = source_sequence(source, count)
    cls = name.rsplit('-', 1)[0]
    folder = os.path.join(root, cls, name) if nested else os.path.join(root, name)
    written = _copy_frames(frames, os.path.join(folder, 'img'), '%08d.jpg', start=1)
    occlusion, out_of_view = np.zeros(count, int), np.zeros(count, int)
    occlusion[2], out_of_view[6:8] = 1, 1
    _write_rows(os.path.join(folder, 'groundtruth.txt'), boxes, fmt='%d')
    _write_rows(os.path.join(folder, 'full_occlusion.txt'), occlusion[None], fmt='%d')
    _write_rows(os.path.join(folder, 'out_of_view.txt'), out_of_view[None], fmt='%d')
    with open(os.path.join(folder, 'nlp.txt'), 'w') as handle:
        handle.write('a walking person\n')
    return written, boxes, occlusion.astype(bool), out_of_view.astype(bool)


def write_trackingnet(root, name='-3TIfnTSM6c_2', source='crossing', count=12, chunk='TEST'):
    """A TrackingNet chunk; frames 0.jpg .. 11.jpg (not zero-padded), TEST: frame-0 box only."""
    frames, boxes = source_sequence(source, count)
    written = _copy_frames(frames, os.path.join(root, chunk, 'frames', name), '%d.jpg')
    os.makedirs(os.path.join(root, chunk, 'anno'), exist_ok=True)
    _write_rows(os.path.join(root, chunk, 'anno', name + '.txt'), boxes[:1] if chunk == 'TEST' else boxes)
    return written, boxes


def write_folder(root, name='walker', source='crossing', count=12, sep=' '):
    frames, boxes = source_sequence(source, count)
    written = _copy_frames(frames, os.path.join(root, name), 'frame_%03d.jpg')
    _write_rows(os.path.join(root, name, 'groundtruth.txt'), boxes, sep)
    return written, boxes
