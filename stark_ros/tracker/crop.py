"""Crop and pre-processing of templates and search regions (NumPy / OpenCV / PyTorch; no rclpy).

Sources: STARK_FACTS.md section 9.2 (official ``sample_target`` in ``lib/train/data/processing_utils.py``),
section 9.3 (``Preprocessor`` in ``lib/test/tracker/stark_utils.py``) and section 10 (``map_box_back`` of
``lib/test/tracker/stark_st.py``, ``clip_box`` of ``lib/utils/box_ops.py``). Boxes are ``xywh``: top-left x, y and
width, height, in pixels, as Python floats (float64).
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..errors import InvalidBoxError, InvalidImageError

#: ImageNet statistics, RGB order (STARK_FACTS.md section 9.3).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Minimum box side kept by :func:`clip_box`, pixels.
CLIP_MARGIN = 10
#: Largest crop side, image pixels, that :func:`sample_target` pads and resizes as the official code does (the padded
#: crop is an array of ``crop_sz**2 * 3`` bytes: at most 48 MiB). Larger crops (a big target times a big search area
#: factor: search_factor 20 around a 640 x 480 image-sized box asks for an 11086-pixel square, 369 MB; a 4K image,
#: 10 GB) are sampled straight into the output patch instead, so no factor and no box make the crop take more than
#: :data:`MAX_CROP_BYTES`.
MAX_PADDED_CROP_SIDE = 4096
#: Bound on the arrays :func:`sample_target` allocates besides the output patch, bytes (48 MiB).
MAX_CROP_BYTES = MAX_PADDED_CROP_SIDE ** 2 * 3


@dataclass(frozen=True)
class Crop:
    """A square crop resized to ``size x size``.

    Attributes:
        patch: (size, size, 3) uint8 RGB.
        mask: (size, size) bool, True where the pixel mixes in padding.
        resize_factor: ``size / crop_sz`` (patch pixels per image pixel).
        crop_sz: side of the square in image pixels before resizing.
    """

    patch: np.ndarray
    mask: np.ndarray
    resize_factor: float
    crop_sz: int


def crop_window(box, factor):
    """Square window around a box: ``(x1, y1, crop_sz)`` in integer image pixels (end exclusive).

    ``crop_sz = ceil(sqrt(w*h) * factor)``; ``x1 = round(x + w/2 - crop_sz/2)`` with Python's round-half-to-even.

    Raises:
        InvalidBoxError: ``crop_sz < 1`` (empty box).
    """
    x, y, w, h = box
    crop_sz = math.ceil(math.sqrt(w * h) * factor)
    if crop_sz < 1:
        raise InvalidBoxError('box %r is too small to crop (crop side %d)' % (tuple(box), crop_sz))
    return round(x + 0.5 * w - crop_sz * 0.5), round(y + 0.5 * h - crop_sz * 0.5), crop_sz


def _padding(image_shape, x1, y1, crop_sz):
    """(left, top, right, bottom) padding; right/bottom include the official '+1' (last column/row dropped)."""
    height, width = image_shape[:2]
    x2, y2 = x1 + crop_sz, y1 + crop_sz
    return max(0, -x1), max(0, -y1), max(0, x2 - width + 1), max(0, y2 - height + 1)


def crop_overlaps_image(image_shape, box, factor):
    """True if the square crop of ``box`` takes at least one image pixel (else it would be all padding)."""
    x1, y1, crop_sz = crop_window(box, factor)
    left, top, right, bottom = _padding(image_shape, x1, y1, crop_sz)
    return x1 + left < x1 + crop_sz - right and y1 + top < y1 + crop_sz - bottom


def sample_target(image, box, factor, size):
    """Square crop of side ``ceil(sqrt(w*h)*factor)`` centred on ``box``, zero-padded, resized to ``size``.

    Up to :data:`MAX_PADDED_CROP_SIDE` it reproduces the official arithmetic bit-exactly (STARK_FACTS.md 9.2):
    half-to-even rounding of the corner, the '+1' right/bottom padding quirk, black constant padding, ``cv2.resize``
    INTER_LINEAR of the uint8 patch and of a float64 padding mask, which is then cast to bool (any mixed-in padding
    counts as padded). Larger crops are sampled straight from the image into the ``size x size`` patch
    (:func:`_sample_direct`): the same square, the same bilinear sample points and black outside the image, without
    building the padded crop, so memory stays under :data:`MAX_CROP_BYTES` plus the patch whatever the factor and
    box; pixel values then differ from the official ones by OpenCV's fixed-point rounding (a grey level or two).
    ``crop_sz`` and ``resize_factor`` are the true ones in both cases, so boxes map back exactly
    (:func:`map_box_back`).

    Args:
        image: (H, W, 3) uint8 RGB.
        box: (x, y, w, h) pixels.
        factor: search area factor.
        size: output side, pixels.
    Returns:
        :class:`Crop`.
    Raises:
        InvalidBoxError: empty box, or a crop that takes no image pixel.
    """
    x1, y1, crop_sz = crop_window(box, factor)
    padding = left, top, right, bottom = _padding(image.shape, x1, y1, crop_sz)
    x2, y2 = x1 + crop_sz, y1 + crop_sz
    if not (x1 + left < x2 - right and y1 + top < y2 - bottom):
        raise InvalidBoxError('the %dx%d crop around box %r lies outside the %dx%d image'
                              % (crop_sz, crop_sz, tuple(box), image.shape[1], image.shape[0]))
    inside = image[y1 + top:y2 - bottom, x1 + left:x2 - right]   # a view
    if crop_sz > MAX_PADDED_CROP_SIDE:
        return Crop(_sample_direct(inside, crop_sz, left, top, size), _direct_padding_mask(crop_sz, padding, size),
                    size / crop_sz, crop_sz)
    padded = cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_CONSTANT)
    patch = cv2.resize(padded, (size, size))
    return Crop(patch, padding_mask(crop_sz, padding, size), size / crop_sz, crop_sz)


def _sample_points(crop_sz, size):
    """Where ``cv2.resize`` INTER_LINEAR samples a ``crop_sz`` axis for ``size`` outputs: crop coordinate
    ``(i + 0.5) * crop_sz / size - 0.5`` of output pixel ``i``, float64."""
    return (np.arange(size, dtype=np.float64) + 0.5) * (crop_sz / size) - 0.5


def _sample_direct(inside, crop_sz, left, top, size):
    """The ``size x size`` patch of a ``crop_sz`` square crop whose image part ``inside`` starts at crop pixel
    ``(left, top)``, black elsewhere, sampled bilinearly at ``cv2.resize``'s points without the padded crop.

    ``cv2.warpAffine`` (INTER_LINEAR, black constant border) computes only the output rows and columns whose
    sample points fall within one pixel of ``inside`` (the others see padding only and stay 0), so the source
    coordinates it handles stay within the image (OpenCV's fixed-point maps cannot hold millions of pixels).
    Memory: the output patch plus that sub-rectangle.
    """
    height, width = inside.shape[:2]
    patch = np.zeros((size, size, 3), dtype=np.uint8)
    xs = _sample_points(crop_sz, size) - left      # sample points in ``inside`` coordinates
    ys = _sample_points(crop_sz, size) - top
    cols = np.flatnonzero((xs > -1.0) & (xs < width))
    rows = np.flatnonzero((ys > -1.0) & (ys < height))
    if not cols.size or not rows.size:
        return patch
    scale = crop_sz / size
    matrix = np.array([[scale, 0.0, xs[cols[0]]], [0.0, scale, ys[rows[0]]]], dtype=np.float64)
    part = cv2.warpAffine(inside, matrix, (int(cols.size), int(rows.size)),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))
    patch[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = part
    return patch


def _direct_padding_mask(crop_sz, padding, size):
    """:func:`padding_mask` computed from ``cv2.resize``'s sample points instead of a ``crop_sz``-long array (for
    crops over :data:`MAX_PADDED_CROP_SIDE`): an output row takes the two input rows around its sample point
    (clamped to the crop), the second one only with a non-zero weight; it is padded when one of those is.

    Returns:
        (size, size) bool.
    """
    left, top, right, bottom = padding

    def axis(before, after):
        points = np.clip(_sample_points(crop_sz, size), 0.0, crop_sz - 1.0)
        first = np.floor(points)
        second = np.where(points > first, first + 1, first)
        padded = lambda i: (i < before) | (i >= crop_sz - after)   # noqa: E731
        return padded(first) | padded(second)

    return axis(top, bottom)[:, None] | axis(left, right)[None, :]


def padding_mask(crop_sz, padding, size):
    """The official padding mask, resized: True where an output pixel mixes in a padded input pixel.

    Officially (STARK_FACTS.md 9.2) a ``crop_sz x crop_sz`` float64 mask (1 on padding) is resized with
    ``cv2.resize`` INTER_LINEAR and cast to bool. That array costs ``8 * crop_sz**2`` bytes: 53 MB, 15 ms, for
    a target of 500 px in a factor-5 search region. The mask is computed here from two 1-D resizes instead, with
    the same result: a padded input pixel is one in a padded row *or* a padded column, the bilinear weights are
    non-negative and sum to 1 along each axis, so an output pixel takes a padded pixel with non-zero weight
    exactly when its row takes a padded row or its column a padded column with non-zero weight. Each axis is
    resized alone as a ``crop_sz x 1`` float64 image (the weights of an axis depend only on its own input and
    output sizes); ``test_tracker_api`` checks the equality against the full 2-D resize.

    Args:
        crop_sz: side of the square crop, image pixels.
        padding: (left, top, right, bottom) padded pixels of the crop.
        size: output side, pixels.
    Returns:
        (size, size) bool.
    """
    left, top, right, bottom = padding

    def axis(before, after):
        line = np.zeros((crop_sz, 1), dtype=np.float64)
        line[:before] = 1
        line[crop_sz - after:] = 1
        return cv2.resize(line, (1, size)).reshape(size).astype(np.bool_)

    return axis(top, bottom)[:, None] | axis(left, right)[None, :]


class Preprocessor:
    """uint8 RGB patch + bool mask -> normalised network input on a device.

    ``(patch / 255 - mean) / std`` in float32, CHW, batch of 1 (STARK_FACTS.md 9.3).

    Args:
        device: torch device of the network.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def __call__(self, crop):
        """:class:`Crop` -> (image (1, 3, S, S) float32, mask (1, S, S) bool) on the device."""
        image = torch.from_numpy(crop.patch).to(self.device).float().permute(2, 0, 1).unsqueeze(0)
        image = (image / 255.0 - self.mean) / self.std
        mask = torch.from_numpy(crop.mask).to(self.device).unsqueeze(0)
        return image, mask


def map_box_back(pred_cxcywh, prev_box, search_size, resize_factor):
    """Search-region prediction (cx, cy, w, h in crop pixels at image scale) -> image xywh.

    Uses the unrounded previous centre and ``search_size / resize_factor / 2`` (= crop_sz / 2), exactly like the
    official ``map_box_back`` (STARK_FACTS.md section 10), including its systematic <= 0.5 px offset.
    """
    cx_prev = prev_box[0] + 0.5 * prev_box[2]
    cy_prev = prev_box[1] + 0.5 * prev_box[3]
    cx, cy, w, h = pred_cxcywh
    half_side = 0.5 * search_size / resize_factor
    cx_real = cx + (cx_prev - half_side)
    cy_real = cy + (cy_prev - half_side)
    return [cx_real - 0.5 * w, cy_real - 0.5 * h, w, h]


def clip_box(box, height, width, margin=CLIP_MARGIN):
    """Clip an xywh box to the image, keeping at least ``margin`` pixels of width and height.

    ``x1 in [0, W - margin]``, ``x2 in [margin, W]``, ``w = max(margin, x2 - x1)`` (same for y): the box is
    truncated at the border; negative predicted sizes become ``margin`` (official ``clip_box``, margin 10).
    """
    x1, y1, w, h = box
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0, x1), width - margin)
    x2 = min(max(margin, x2), width)
    y1 = min(max(0, y1), height - margin)
    y2 = min(max(margin, y2), height)
    return [x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)]


def validate_image(image):
    """Check an RGB frame: (H, W, 3) uint8 ndarray with H, W >= 1.

    Raises:
        InvalidImageError: naming what is wrong.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidImageError('image must be a numpy array, got %s' % type(image).__name__)
    if image.dtype != np.uint8:
        raise InvalidImageError('image must be uint8, got %s' % image.dtype)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImageError('image must be HxWx3 (RGB), got shape %s' % (image.shape,))


def validate_init_box(box, image_shape):
    """Check an initial xywh box against an image of ``image_shape`` (H, W, ...); return it as 4 floats.

    Raises:
        InvalidBoxError: not 4 numbers, not finite, width or height <= 0, no overlap with the image, or larger than
            the image (a target cannot be; the crops around such a box would need memory growing with its area,
            e.g. 1.2 TB for a 10^6-pixel box).
    """
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError) as error:
        raise InvalidBoxError('box must be 4 numbers (x, y, w, h), got %r' % (box,)) from error
    if len(values) != 4:
        raise InvalidBoxError('box must be 4 numbers (x, y, w, h), got %d' % len(values))
    if not all(math.isfinite(v) for v in values):
        raise InvalidBoxError('box %r is not finite' % (tuple(values),))
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise InvalidBoxError('box %r is empty: width and height must be > 0 pixels' % (tuple(values),))
    height, width = image_shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise InvalidBoxError('box %r does not overlap the %dx%d image' % (tuple(values), width, height))
    if w > width or h > height:
        raise InvalidBoxError('box %r is larger than the %dx%d image' % (tuple(values), width, height))
    return values
