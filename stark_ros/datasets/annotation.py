"""Reading the text files benchmark layouts share: box files, per-frame flag files, sequence lists, frame folders.

Every error is a :class:`~.base.DatasetError` that names the file and, for a bad value, the 1-based line.
"""
import os
import re

import numpy as np

from .base import DatasetError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
_SEPARATORS = re.compile(r'[,;\s]+')


def read_rows(path, widths=(4,)):
    """Read a box file (annotation or tracker results): one row per non-empty line, numbers separated by commas,
    semicolons, tabs or spaces.

    Args:
        path: the text file.
        widths: the accepted numbers per line (e.g. ``(4, 8)`` for VOT rectangles or polygons); every line must
            have the same count. ``nan`` is accepted as a value (unknown box).
    Returns:
        (N, K) float64 array, K the row width found.
    Raises:
        DatasetError: the file is missing, or a line has another count of values or a value that is not a number
            (the message names the file and the line).
    """
    if not os.path.isfile(path):
        raise DatasetError('file %s does not exist' % path)
    rows, width = [], None
    with open(path, encoding='utf-8-sig') as handle:
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text:
                continue
            fields = [f for f in _SEPARATORS.split(text) if f]
            if width is None:
                width = len(fields)
                if width not in widths:
                    raise DatasetError('%s line %d: %d values, expected %s'
                                       % (path, number, width, ' or '.join(str(w) for w in widths)))
            elif len(fields) != width:
                raise DatasetError('%s line %d: %d values where the lines before have %d'
                                   % (path, number, len(fields), width))
            try:
                rows.append([float(f) for f in fields])
            except ValueError:
                raise DatasetError('%s line %d: not a number in %r' % (path, number, text)) from None
    if not rows:
        raise DatasetError('file %s is empty' % path)
    return np.asarray(rows, dtype=np.float64)


def polygons_to_boxes(rows):
    """Axis-aligned ``(x, y, w, h)`` boxes of VOT polygons ``x1,y1,...,x4,y4``: min / max of the corners
    (EVALUATION_FACTS.md section 4). (N, 8) -> (N, 4); 4-wide rows are returned unchanged."""
    if rows.shape[1] == 4:
        return rows
    xs, ys = rows[:, 0::2], rows[:, 1::2]
    x0, y0 = xs.min(axis=1), ys.min(axis=1)
    return np.stack([x0, y0, xs.max(axis=1) - x0, ys.max(axis=1) - y0], axis=1)


def read_flags(path, count=None):
    """Read per-frame integer flags, one per line (GOT-10k ``*.label``) or on one comma-separated line (LaSOT).

    Args:
        count: expected number of values, or None.
    Returns:
        (N,) int64 array.
    Raises:
        DatasetError: missing file, a value that is not an integer, or not ``count`` values (file and line named).
    """
    if not os.path.isfile(path):
        raise DatasetError('annotation file %s does not exist' % path)
    values = []
    with open(path, encoding='utf-8-sig') as handle:
        for number, line in enumerate(handle, 1):
            for field in _SEPARATORS.split(line.strip()):
                if not field:
                    continue
                try:
                    values.append(int(float(field)))
                except ValueError:
                    raise DatasetError('%s line %d: not an integer: %r' % (path, number, field)) from None
    if count is not None and len(values) != count:
        raise DatasetError('%s: %d values for %d frames' % (path, len(values), count))
    return np.asarray(values, dtype=np.int64)


def read_list(path):
    """Names listed one per line (``list.txt``); blank lines and ``#`` comments are skipped."""
    if not os.path.isfile(path):
        raise DatasetError('sequence list %s does not exist' % path)
    with open(path, encoding='utf-8-sig') as handle:
        names = [line.split('#', 1)[0].strip() for line in handle]
    return [name for name in names if name]


def missing_listed(listed, name):
    """The error for a sequence that a list file names but that is not on disk (or lacks annotation / frames)."""
    return DatasetError('%s lists %s, which is missing under %s or has no annotation or frames'
                        % (listed, name, os.path.dirname(listed)))


def natural_key(name):
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (TrackingNet frames are not zero-padded)."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def list_frames(folder):
    """Image files directly in ``folder``, in natural order, as absolute paths.

    Raises:
        DatasetError: the folder does not exist or holds no image (extensions: :data:`IMAGE_EXTENSIONS`).
    """
    if not os.path.isdir(folder):
        raise DatasetError('frame folder %s does not exist' % folder)
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)), key=natural_key)
    if not names:
        raise DatasetError('no image files (%s) in %s' % (', '.join(IMAGE_EXTENSIONS), folder))
    return tuple(os.path.abspath(os.path.join(folder, n)) for n in names)


def has_frames(folder):
    """True when ``folder`` exists and directly holds at least one image file."""
    return os.path.isdir(folder) and any(n.lower().endswith(IMAGE_EXTENSIONS) for n in os.listdir(folder))


def frame_folder(folder, subfolder):
    """Where a sequence's frames are: ``<folder>/<subfolder>`` if it holds images, else ``folder`` if it does,
    else None (VOT keeps frames in ``color/``, plain folders in ``img/``, both sometimes beside the annotation)."""
    for candidate in (os.path.join(folder, subfolder), folder):
        if has_frames(candidate):
            return candidate
    return None


def check_count(boxes, frames, path):
    """Raise a DatasetError naming ``path`` unless there is one box row per frame."""
    if len(boxes) != len(frames):
        raise DatasetError('%s has %d boxes but the sequence has %d frames (in %s)'
                           % (path, len(boxes), len(frames), os.path.dirname(frames[0])))


def visible_boxes(boxes):
    """(N,) bool: rows with finite values and positive width and height."""
    with np.errstate(invalid='ignore'):
        return np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def subfolders(root):
    """Names of the folders directly under ``root``, in natural order (hidden ones skipped)."""
    if not os.path.isdir(root):
        raise DatasetError('dataset folder %s does not exist' % root)
    return sorted((n for n in os.listdir(root) if not n.startswith('.') and os.path.isdir(os.path.join(root, n))),
                  key=natural_key)
