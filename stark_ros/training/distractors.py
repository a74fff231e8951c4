"""Distractors for training crops: other sequences' targets pasted into a search region, and background crops.

Why: a network trained on search regions that hold one salient object learns "find an object" and ignores its
template. Pasting targets of *other* sequences next to the real one (copy-paste augmentation) gives search regions
with several plausible objects, where only the template says which one is meant; every pasted object is also a
labelled target for its own sequence's template, and a negative for any other template (stage 2).

Placement (the formulas the tests check), in search-crop pixels, crop side ``S``, target box ``t`` (xywh):

* size: ``sqrt(w_d h_d) = sqrt(w_t h_t) * exp(size_sigma * N(0, 1))``, keeping the source box's aspect ratio,
  then shrunk so that the longer side is at most ``max_side_fraction * S``;
* centre: uniform in ``[w_d/2, S - w_d/2] x [h_d/2, S - h_d/2]`` (the pasted box lies inside the crop), accepted
  when the centre pixel is not padding and the box's IoU with the target and with every box pasted before is at
  most ``max_iou``; up to ``tries`` draws per distractor, after which that distractor is skipped;
* blending: ``crop = alpha * patch + (1 - alpha) * crop`` with ``alpha`` 1 inside and a linear ramp to 0 over the
  outer ``feather`` fraction of each side (no hard rectangle edge for the network to key on).

Background crops (negatives from the target's own video): the crop is centred on a box of the target's size at a
uniform position in the frame such that the target's box lies entirely outside the crop square; None when the frame
has no such place.

Boxes are ``xywh`` pixels (top-left corner and size), float64, unless a docstring says otherwise.
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DistractorPatch:
    """A target cut out of a frame of another sequence, with its origin.

    Attributes:
        pixels: (h, w, 3) uint8 RGB, the ground-truth box region of the source frame.
        sequence: index of the source sequence (in the cache's sequence list).
        frame: index of the source frame within that sequence.
    """

    pixels: np.ndarray
    sequence: int
    frame: int


@dataclass(frozen=True)
class PasteSettings:
    """Parameters of :func:`place_distractors` (module docstring formulas).

    Attributes:
        size_sigma: log-normal spread of the distractor's geometric-mean side around the target's.
        max_side_fraction: largest allowed distractor side, as a fraction of the crop side.
        max_iou: largest IoU of a pasted box with the target or with another pasted box.
        feather: fraction of each side over which the paste fades out.
        tries: placement draws per distractor before it is skipped.
    """

    size_sigma: float = 0.25
    max_side_fraction: float = 0.5
    max_iou: float = 0.1
    feather: float = 0.12
    tries: int = 20


def box_iou(a, b):
    """IoU of two ``xywh`` boxes (0 when either is empty)."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def cut_patch(frame, box, max_side=160):
    """The ``xywh`` box region of ``frame`` (H, W, 3) uint8, clipped to the image, resized so its longer side is
    at most ``max_side`` pixels (keeps the distractor bank small); None if less than 2x2 pixels remain."""
    height, width = frame.shape[:2]
    x1, y1 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x2, y2 = min(width, int(math.ceil(box[0] + box[2]))), min(height, int(math.ceil(box[1] + box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    patch = frame[y1:y2, x1:x2]
    scale = max_side / max(patch.shape[:2])
    if scale < 1:
        patch = cv2.resize(patch, (max(2, round(patch.shape[1] * scale)), max(2, round(patch.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(patch)


def distractor_size(patch_shape, target_box, crop_side, settings, rng):
    """Pasted size ``(w_d, h_d)`` in crop pixels (module docstring: size formula). Draws one normal."""
    aspect = patch_shape[0] / patch_shape[1]                         # h / w of the source box
    side = math.sqrt(max(target_box[2] * target_box[3], 1.0)) * math.exp(settings.size_sigma * rng.standard_normal())
    width, height = side / math.sqrt(aspect), side * math.sqrt(aspect)
    shrink = min(1.0, settings.max_side_fraction * crop_side / max(width, height))
    return max(2.0, width * shrink), max(2.0, height * shrink)


def place_distractors(crop_side, target_box, patch_shapes, mask, settings, rng):
    """Boxes where the patches go (module docstring: size and centre formulas).

    Args:
        crop_side: ``S``, the crop side in pixels.
        target_box: (4,) ``xywh`` crop pixels of the real target (may reach outside the crop).
        patch_shapes: list of ``(h, w)`` of the patches, in pasting order.
        mask: (S, S) bool padding mask of the crop (True = padding).
        settings: :class:`PasteSettings`.
        rng: ``numpy.random.Generator``.
    Returns:
        list with, per patch, a (4,) ``xywh`` crop-pixel box or None (no place found in ``settings.tries`` draws).
    """
    placed, taken = [], [np.asarray(target_box, dtype=np.float64)]
    for shape in patch_shapes:
        width, height = distractor_size(shape, target_box, crop_side, settings, rng)
        found = None
        for _ in range(settings.tries):
            cx = width / 2 + rng.random() * max(crop_side - width, 0.0)
            cy = height / 2 + rng.random() * max(crop_side - height, 0.0)
            box = np.array([cx - width / 2, cy - height / 2, width, height])
            if mask[min(int(cy), crop_side - 1), min(int(cx), crop_side - 1)]:
                continue
            if all(box_iou(box, other) <= settings.max_iou for other in taken):
                found = box
                break
        placed.append(found)
        if found is not None:
            taken.append(found)
    return placed


def feather_alpha(height, width, feather):
    """(height, width) float32 blending weights: 1 inside, a linear ramp to 0 over the outer ``feather`` fraction
    of each side (module docstring: blending)."""
    def ramp(n):
        edge = max(feather * n, 1e-6)
        position = np.arange(n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(position, n - position) / edge, 0.0, 1.0)
    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def paste(crop, patch, box, feather):
    """Blend ``patch`` (h, w, 3) uint8 into ``crop`` (S, S, 3) uint8 in place at the ``xywh`` crop-pixel ``box``
    (resized to the box's rounded size; the box lies inside the crop)."""
    x1, y1 = int(round(box[0])), int(round(box[1]))
    width = max(2, min(int(round(box[2])), crop.shape[1] - x1))
    height = max(2, min(int(round(box[3])), crop.shape[0] - y1))
    resized = cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = feather_alpha(height, width, feather)[..., None]
    region = crop[y1:y1 + height, x1:x1 + width].astype(np.float32)
    crop[y1:y1 + height, x1:x1 + width] = np.clip(alpha * resized + (1 - alpha) * region + 0.5, 0, 255).astype(np.uint8)
    return np.array([x1, y1, width, height], dtype=np.float64)


def background_box(image_shape, target_box, factor, rng, tries=20):
    """A box of the target's size to centre a background crop on, the target's box entirely outside the crop.

    The crop is the square of side ``ceil(sqrt(w h) * factor)`` around the box's centre
    (:func:`stark_ros.tracker.crop.sample_target`); the centre is drawn uniformly over the frame.

    Args:
        image_shape: (H, W, ...) of the frame.
        target_box: (4,) ``xywh`` pixels.
        factor: search area factor.
        rng: ``numpy.random.Generator``.
    Returns:
        (4,) ``xywh`` pixels, or None when ``tries`` draws found no such place.
    """
    height, width = image_shape[:2]
    x, y, w, h = (float(v) for v in target_box)
    half = math.ceil(math.sqrt(w * h) * factor) / 2
    for _ in range(tries):
        cx, cy = rng.random() * width, rng.random() * height
        outside = (cx + half <= x or cx - half >= x + w or cy + half <= y or cy - half >= y + h)
        if outside:
            return np.array([cx - w / 2, cy - h / 2, w, h])
    return None
