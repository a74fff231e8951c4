"""Training crops of STARK: box jitter, the inference crop, ground truth mapped into the crop, rejection rules.

Source: STARK_FACTS.md section 12 ("Processing", official ``STARKProcessing`` in ``lib/train/data/processing.py``):

* jitter of the box the crop is centred on: ``w' = w * exp(N(0, 1) * s_j)`` and ``h'`` likewise (independent
  draws), centre ``+= sqrt(w' h') * c_j * (U(0, 1) - 0.5)`` per axis; search ``s_j = 0.5, c_j = 4.5``, templates 0;
* the crop is the inference crop :func:`stark_ros.tracker.crop.sample_target` (factor 5 / 2, size 320 / 128);
* the ground truth in the crop: centre ``(S - 1)/2 + (gt_c - jit_c) * resize_factor``, size
  ``gt_wh * resize_factor``, divided by ``S`` (note ``(S - 1)/2`` here against ``S/2`` at inference);
* a crop is rejected if ``crop_sz < 1``, if its padding mask is all padding, or if the mask sampled at the
  backbone's nearest-neighbour feature positions (pixel ``16 i``, STARK_FACTS.md section 15.3) is all padding.
  A crop that takes no image pixel at all (the jittered centre far outside the frame) is rejected the same way.

Boxes are ``xywh`` (top-left corner and size), float64; pixels on frames, fractions of the crop side on crops.
"""
import math

import numpy as np
import torch

from ..errors import InvalidBoxError
from ..model.backbone import BACKBONE_STRIDE
from ..tracker.crop import sample_target
from .augmentation import Augmentation


def jitter_box(box, scale_jitter, center_jitter, rng):
    """Randomly rescaled and shifted box (STARK_FACTS.md section 12).

    Args:
        box: (x, y, w, h) pixels.
        scale_jitter: ``s_j``; each side is multiplied by ``exp(N(0, 1) * s_j)``.
        center_jitter: ``c_j``; the centre moves by ``sqrt(w' h') * c_j * (U(0, 1) - 0.5)`` per axis, i.e. at most
            ``c_j / 2`` times the geometric mean side of the rescaled box.
        rng: ``numpy.random.Generator`` (always draws 2 normals then 2 uniforms).
    Returns:
        (4,) float64 ``xywh`` pixels.
    """
    x, y, w, h = (float(v) for v in box)
    size = np.array([w, h]) * np.exp(rng.standard_normal(2) * scale_jitter)
    max_offset = math.sqrt(size[0] * size[1]) * center_jitter
    centre = np.array([x + 0.5 * w, y + 0.5 * h]) + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def box_in_crop(gt_box, crop_box, resize_factor, size):
    """Ground truth mapped into the crop centred on ``crop_box``, normalised by the crop side (facts section 12).

    ``centre = (size - 1)/2 + (gt_c - crop_c) * resize_factor``, ``wh = gt_wh * resize_factor``, both ``/ size``.

    Args:
        gt_box: (4,) ``xywh`` pixels of the frame.
        crop_box: (4,) ``xywh`` pixels the crop was centred on (the jittered box).
        resize_factor: crop pixels per frame pixel (``size / crop_sz``).
        size: crop side in pixels.
    Returns:
        (4,) float64 ``xywh`` in fractions of the crop side.
    """
    gt_box, crop_box = np.asarray(gt_box, dtype=np.float64), np.asarray(crop_box, dtype=np.float64)
    gt_centre = gt_box[:2] + 0.5 * gt_box[2:]
    crop_centre = crop_box[:2] + 0.5 * crop_box[2:]
    centre = 0.5 * (size - 1) + (gt_centre - crop_centre) * resize_factor
    wh = gt_box[2:] * resize_factor
    return np.concatenate([centre - 0.5 * wh, wh]) / size


def crop_is_usable(mask, stride=BACKBONE_STRIDE):
    """False if the (S, S) padding mask (True = padding) is all padding, or all padding at the feature positions.

    The backbone downsamples the mask with nearest interpolation, which reads pixel ``stride * i``
    (``mask[::stride, ::stride]``); an all-padding feature mask leaves the transformer nothing to attend to.
    """
    return not (mask.all() or mask[::stride, ::stride].all())


class Processing:
    """Turns sampled frames and boxes into the training crops (STARK_FACTS.md section 12).

    Args:
        template_size, template_factor: template crop side (pixels) and search area factor.
        search_size, search_factor: search crop side (pixels) and search area factor.
        template_scale_jitter, template_center_jitter: ``s_j``, ``c_j`` of the templates.
        search_scale_jitter, search_center_jitter: ``s_j``, ``c_j`` of the search region.
        augmentation: :class:`~.augmentation.Augmentation` (official defaults if None).
    """

    def __init__(self, template_size=128, template_factor=2.0, search_size=320, search_factor=5.0,
                 template_scale_jitter=0.0, template_center_jitter=0.0, search_scale_jitter=0.5,
                 search_center_jitter=4.5, augmentation=None):
        for name, value in (('template_size', template_size), ('search_size', search_size)):
            if int(value) != value or value < BACKBONE_STRIDE or value % BACKBONE_STRIDE:
                raise ValueError('%s must be a positive multiple of %d pixels, got %r'
                                 % (name, BACKBONE_STRIDE, value))
        for name, value in (('template_factor', template_factor), ('search_factor', search_factor)):
            if not value > 0:
                raise ValueError('%s must be > 0, got %r' % (name, value))
        self.template = (int(template_size), float(template_factor), float(template_scale_jitter),
                         float(template_center_jitter))
        self.search = (int(search_size), float(search_factor), float(search_scale_jitter),
                       float(search_center_jitter))
        self.augmentation = augmentation if augmentation is not None else Augmentation()

    def crop(self, frame, box, settings, rng):
        """Jitter, crop and map one frame's box; None if the crop is rejected.

        Args:
            frame: (H, W, 3) uint8 RGB.
            box: (4,) ``xywh`` pixels (ground truth after the joint transforms).
            settings: ``self.template`` or ``self.search``.
            rng: ``numpy.random.Generator``.
        Returns:
            (patch (S, S, 3) uint8, mask (S, S) bool, box (4,) normalised ``xywh``) or None.
        """
        size, factor, scale_jitter, center_jitter = settings
        box = np.asarray(box, dtype=np.float64)
        if not (np.isfinite(box).all() and box[2] > 0 and box[3] > 0):
            return None
        jittered = jitter_box(box, scale_jitter, center_jitter, rng)
        try:
            crop = sample_target(frame, jittered, factor, size)
        except InvalidBoxError:  # crop_sz < 1, or a crop that takes no pixel of the frame
            return None
        if not crop_is_usable(crop.mask):
            return None
        return crop.patch, crop.mask, box_in_crop(box, jittered, crop.resize_factor, size)

    def __call__(self, template_frames, template_boxes, search_frame, search_box, rng):
        """One training sample, or None if any crop is rejected (the sampler then draws another).

        Args:
            template_frames: list of T (H, W, 3) uint8 RGB frames; template_boxes: T (4,) ``xywh`` pixels.
            search_frame: (H, W, 3) uint8 RGB; search_box: (4,) ``xywh`` pixels.
            rng: ``numpy.random.Generator``; the draws are: joint augmentation, then per template (jitter,
                per-crop augmentation), then the search region likewise.
        Returns:
            dict ``template_images`` (T, 3, Ht, Wt) float32, ``template_masks`` (T, Ht, Wt) bool (True = padding),
            ``search_image`` (3, Hs, Ws) float32, ``search_mask`` (Hs, Ws) bool, ``search_box`` (4,) float32
            ``xywh`` normalised by the search side; or None.
        """
        frames, boxes = self.augmentation.joint(list(template_frames) + [search_frame],
                                                list(template_boxes) + [search_box], rng)
        images, masks, out_boxes = [], [], []
        for index, (frame, box) in enumerate(zip(frames, boxes)):
            settings = self.search if index == len(frames) - 1 else self.template
            cropped = self.crop(frame, box, settings, rng)
            if cropped is None:
                return None
            image, mask, crop_box = self.augmentation.crop(*cropped, rng)
            images.append(image)
            masks.append(mask)
            out_boxes.append(crop_box)
        return {
            'template_images': torch.stack(images[:-1]),
            'template_masks': torch.stack(masks[:-1]),
            'search_image': images[-1],
            'search_mask': masks[-1],
            'search_box': torch.tensor(out_boxes[-1], dtype=torch.float32),
        }
