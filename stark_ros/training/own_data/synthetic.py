"""Synthetic-but-real sequences: a real photo region moving over real video frames, with exact boxes.

The object is a region of a real photo (its segment mask from :mod:`.regions`, or a labelled polygon) and
the background a run of consecutive frames of a real video (its own camera and scene motion) or a real
photo seen through a slowly panning and zooming window. The object moves along a smooth random walk
(velocity with momentum, bounced at the image border) and changes size by a random walk in log-scale.
Optionally (probabilities in :func:`make_sequence`) a second copy of the same object moves independently
(a distractor, drawn under the target) and another photo region crosses in front of the target (an
occluder): the cover label is then the exact visible fraction of the target's mask, and a fully covered
target is marked absent. Boxes are the tight boxes of the pasted mask, ``(x, y, w, h)`` pixels.
"""
import cv2
import numpy as np

from .writers import cover_level


def _paste(canvas, patch, mask, x, y):
    """Alpha-blend ``patch`` (h, w, 3) with soft ``mask`` (h, w) float at integer (x, y); return covered mask."""
    h, w = mask.shape
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    a = mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (a * patch[y0 - y:y1 - y, x0 - x:x1 - x] + (1 - a) * region).astype(np.uint8)
    full = np.zeros((H, W), bool)
    full[y0:y1, x0:x1] = mask[y0 - y:y1 - y, x0 - x:x1 - x] > 0.5
    return full


def _resize_obj(patch, mask, w, h):
    w, h = max(2, int(round(w))), max(2, int(round(h)))
    p = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if w < patch.shape[1] else cv2.INTER_LINEAR)
    m = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return p, cv2.GaussianBlur(m, (3, 3), 0)


class _Walker:
    """Smooth random motion of a box centre and size inside a W x H image."""

    def __init__(self, rng, size, base_wh, speed):
        self.rng, (self.W, self.H) = rng, size
        self.base = np.asarray(base_wh, np.float64)
        self.log_s, self.d_log_s = 0.0, 0.0
        self.c = rng.uniform([self.base[0], self.base[1]], [self.W - self.base[0], self.H - self.base[1]])
        self.v = rng.normal(0, speed, 2)
        self.speed = speed

    def wh(self):
        return self.base * np.exp(self.log_s)

    def step(self):
        self.v = 0.9 * self.v + self.rng.normal(0, self.speed * 0.3, 2)
        self.d_log_s = 0.8 * self.d_log_s + self.rng.normal(0, 0.006)
        self.log_s = float(np.clip(self.log_s + self.d_log_s, -0.7, 0.7))
        half = self.wh() / 2
        self.c += self.v
        for k, limit in ((0, self.W), (1, self.H)):
            if self.c[k] - half[k] < 0 or self.c[k] + half[k] > limit:
                self.v[k] = -self.v[k]
                self.c[k] = np.clip(self.c[k], half[k], limit - half[k])


def pan_background(photo, size, length, rng):
    """``length`` frames of size ``size`` (W, H) seen through a window slowly panning/zooming over ``photo``."""
    W, H = size
    ph, pw = photo.shape[:2]
    zoom0 = rng.uniform(0.6, 0.95)
    zoom1 = float(np.clip(zoom0 * rng.uniform(0.85, 1.15), 0.5, 1.0))
    frames = []
    start, end = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)
    for t in range(length):
        a = t / max(1, length - 1)
        z = zoom0 + (zoom1 - zoom0) * a
        cw, ch = min(pw, ph * W / H) * z, min(ph, pw * H / W) * z
        fx, fy = start + (end - start) * a
        x, y = fx * (pw - cw), fy * (ph - ch)
        m = np.array([[W / cw, 0, -x * W / cw], [0, H / ch, -y * H / ch]], np.float32)
        frames.append(cv2.warpAffine(photo, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return frames


def make_sequence(backgrounds, obj, rng, occluder=None, p_distractor=0.3, p_occluder=0.3):
    """One synthetic sequence.

    Args:
        backgrounds: list of N BGR uint8 frames of one size (consumed; not modified in place).
        obj: (patch BGR uint8 (h, w, 3), mask bool (h, w)) of the target.
        rng: numpy Generator.
        occluder: optional (patch, mask) of another region.
    Returns:
        (frames, boxes (N, 4) float64, absence (N,) int, cover (N,) int).
    """
    H, W = backgrounds[0].shape[:2]
    patch, mask = obj
    area = rng.uniform(0.004, 0.05) * W * H
    aspect = patch.shape[1] / float(patch.shape[0])
    base = np.array([np.sqrt(area * aspect), np.sqrt(area / aspect)])
    base *= min(1.0, 0.4 * W / base[0], 0.4 * H / base[1])      # fits the image even at twice the size
    speed = rng.uniform(0.5, 6.0)
    target = _Walker(rng, (W, H), base, speed)
    distractor = _Walker(rng, (W, H), base, speed) if rng.random() < p_distractor else None
    dpatch = np.clip(patch.astype(np.float32) * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)
    crossing = None
    if occluder is not None and rng.random() < p_occluder:
        n = len(backgrounds)
        oscale = np.sqrt(area * rng.uniform(1.0, 3.0) / (occluder[0].shape[0] * occluder[0].shape[1]))
        crossing = (occluder, oscale, int(rng.integers(n // 4, 3 * n // 4)), rng.uniform(-1, 1, 2))
    frames, boxes, absence, cover = [], [], [], []
    for t, bg in enumerate(backgrounds):
        canvas = bg.copy()
        if distractor is not None:
            w, h = distractor.wh()
            p, m = _resize_obj(dpatch, mask, w, h)
            _paste(canvas, p, m, int(round(distractor.c[0] - w / 2)), int(round(distractor.c[1] - h / 2)))
            distractor.step()
        w, h = target.wh()
        p, m = _resize_obj(patch, mask, w, h)
        x, y = int(round(target.c[0] - w / 2)), int(round(target.c[1] - h / 2))
        full = _paste(canvas, p, m, x, y)
        ys, xs = np.nonzero(m > 0.5)
        box = (x + xs.min(), y + ys.min(), xs.max() - xs.min() + 1.0, ys.max() - ys.min() + 1.0)
        visible = 1.0
        if crossing is not None:
            (opatch, omask), oscale, t_cross, direction = crossing
            ow, oh = opatch.shape[1] * oscale, opatch.shape[0] * oscale
            unit = direction / (np.linalg.norm(direction) + 1e-9)
            centre = target.c + unit * (t - t_cross) * max(3.0, speed * 1.5)
            op, om = _resize_obj(opatch, omask, ow, oh)
            covered = _paste(canvas, op, om, int(round(centre[0] - ow / 2)), int(round(centre[1] - oh / 2)))
            if covered is not None and full is not None and full.any():
                visible = float((full & ~covered).sum()) / full.sum()
        frames.append(canvas)
        boxes.append(box)
        cover.append(cover_level(visible))
        absence.append(int(visible <= 0.0))
        target.step()
    return frames, np.array(boxes, np.float64), np.array(absence), np.array(cover)
