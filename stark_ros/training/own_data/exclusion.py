"""Proof that no training frame is a frame of the evaluation sequences (``../shared/eval``).

Every candidate frame (decoded video frame, photo) is compared with every evaluation frame by a content
fingerprint that survives re-encoding, resizing and mild colour changes: the frame as a 32x32 grayscale
thumbnail, normalised to zero mean and unit norm. Two fingerprints with a dot product (normalised cross
correlation) at or above :data:`MATCH_NCC` mark the candidate as an evaluation frame. Source file names are
also checked against the evaluation sequence names (and the OTB / VOT spellings of the same sequences).
"""
import glob
import os
import re

import cv2
import numpy as np

from ...errors import StarkError

#: Normalised cross-correlation of 32x32 thumbnails above which two frames count as the same picture.
#: Re-encoded / resized copies of a frame score > 0.99; distinct frames of one video rarely exceed 0.97.
MATCH_NCC = 0.985
#: The evaluation sequences (and their other spellings); no source file name may contain one.
EVAL_NAMES = ('bag', 'crossing', 'david', 'human7', 'jogging', 'surfer')


class EvalFrameError(StarkError):
    """A training candidate is a frame of the evaluation sequences (the message names both)."""


def fingerprint(image):
    """(1024,) float32 zero-mean unit-norm fingerprint of a BGR or grayscale uint8 image."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    thumb -= thumb.mean()
    return thumb / (np.linalg.norm(thumb) + 1e-6)


class EvalExclusion:
    """Fingerprints of every frame under ``eval_root`` (``<seq>/img/*.jpg``), checked against candidates.

    Raises:
        EvalFrameError: from :meth:`check` when a candidate matches.
    """

    def __init__(self, eval_root):
        self.paths = sorted(glob.glob(os.path.join(eval_root, '*', 'img', '*.jpg')))
        prints = [fingerprint(cv2.imread(p, cv2.IMREAD_GRAYSCALE)) for p in self.paths]
        self.prints = np.stack(prints) if prints else np.zeros((0, 1024), np.float32)
        self.checked = 0
        self.best = -1.0

    def check(self, image, what):
        """Raise :class:`EvalFrameError` if ``image`` (named ``what`` in the message) is an evaluation frame."""
        self.checked += 1
        if not len(self.prints):
            return
        scores = self.prints @ fingerprint(image)
        i = int(np.argmax(scores))
        if scores[i] >= MATCH_NCC:
            raise EvalFrameError('%s matches evaluation frame %s (NCC %.4f): it must not be trained on'
                                 % (what, self.paths[i], scores[i]))
        self.best = max(self.best, float(scores[i]))      # the closest any accepted candidate came


def check_name(path):
    """Raise :class:`EvalFrameError` if a source file name names an evaluation sequence."""
    stem = re.sub(r'[^a-z0-9]', '', os.path.basename(path).lower())
    for name in EVAL_NAMES:
        if name in stem:
            raise EvalFrameError('source file %s is named like evaluation sequence %s' % (path, name))
