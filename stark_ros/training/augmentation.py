"""Training data augmentation of STARK: joint transforms of the full frames, then per-crop transforms.

Source: STARK_FACTS.md section 12 ("Augmentation", official ``lib/train/base_functions.py``):

* joint, one draw shared by every template frame and the search frame, on the full frames and their boxes:
  grayscale with probability 0.05, horizontal flip with probability 0.5;
* then per crop independently: brightness factor ``U(1 - 0.2, 1 + 0.2)`` multiplied into the [0, 1] image and
  clamped to [0, 1], another horizontal flip with probability 0.5 (image, padding mask and normalised box), and
  ImageNet normalisation ``(v - mean) / std`` (STARK_FACTS.md section 9.3).

Every random draw comes from the ``numpy.random.Generator`` passed in, so a sample is a pure function of its seed.
Boxes are ``xywh`` (top-left corner and size): pixels on full frames, fractions of the side on crops.
"""
import cv2
import numpy as np
import torch

from ..tracker.crop import IMAGENET_MEAN, IMAGENET_STD


def flip_box(box, width):
    """Box ``(x, y, w, h)`` of an image of ``width`` after a horizontal flip: ``x' = width - x - w``.

    Pixel column ``j`` moves to ``width - 1 - j``, so the columns ``x .. x + w - 1`` of an integer box land on
    ``width - x - w .. width - 1 - x``. Use ``width = 1`` for boxes normalised to the image side.
    """
    x, y, w, h = box
    return np.array([width - x - w, y, w, h], dtype=np.float64)


class Augmentation:
    """The official training augmentation (STARK_FACTS.md section 12), drawing from a given generator.

    Args:
        grayscale_probability: joint grayscale probability.
        joint_flip_probability: joint horizontal flip probability (full frames).
        brightness_jitter: per-crop brightness factor drawn from ``U(1 - b, 1 + b)``.
        crop_flip_probability: per-crop horizontal flip probability.
        mean, std: normalisation, RGB order, of images in [0, 1].
    """

    def __init__(self, grayscale_probability=0.05, joint_flip_probability=0.5, brightness_jitter=0.2,
                 crop_flip_probability=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        for name, p in (('grayscale_probability', grayscale_probability),
                        ('joint_flip_probability', joint_flip_probability),
                        ('crop_flip_probability', crop_flip_probability)):
            if not 0.0 <= p <= 1.0:
                raise ValueError('%s must lie in [0, 1], got %r' % (name, p))
        if not 0.0 <= brightness_jitter < 1.0:
            raise ValueError('brightness_jitter must lie in [0, 1), got %r' % (brightness_jitter,))
        self.grayscale_probability = grayscale_probability
        self.joint_flip_probability = joint_flip_probability
        self.brightness_jitter = brightness_jitter
        self.crop_flip_probability = crop_flip_probability
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def joint(self, frames, boxes, rng):
        """Grayscale and horizontal flip with one draw for all frames.

        Args:
            frames: list of (H_i, W_i, 3) uint8 RGB frames (the same array may appear several times).
            boxes: list of (4,) float64 pixel boxes ``xywh``, one per frame.
            rng: ``numpy.random.Generator``.
        Returns:
            (frames, boxes): new lists; the input arrays are not modified.
        """
        grayscale = rng.random() < self.grayscale_probability
        flip = rng.random() < self.joint_flip_probability
        out_frames, out_boxes, done = [], [], {}
        for frame, box in zip(frames, boxes):
            key = id(frame)
            if key not in done:  # a frame shared by several slots (image datasets) is transformed once
                image = frame
                if grayscale:
                    image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                if flip:
                    image = cv2.flip(image, 1)
                done[key] = image
            out_frames.append(done[key])
            out_boxes.append(flip_box(box, frame.shape[1]) if flip else np.asarray(box, dtype=np.float64))
        return out_frames, out_boxes

    def crop(self, patch, mask, box, rng):
        """Brightness, horizontal flip and normalisation of one crop.

        Args:
            patch: (S, S, 3) uint8 RGB crop.
            mask: (S, S) bool, True = padding.
            box: (4,) ``xywh`` normalised to the crop side.
            rng: ``numpy.random.Generator``.
        Returns:
            (image (3, S, S) float32 tensor, normalised; mask (S, S) bool tensor; box (4,) float64 array).
        """
        brightness = rng.uniform(1.0 - self.brightness_jitter, 1.0 + self.brightness_jitter)
        flip = rng.random() < self.crop_flip_probability
        image = np.clip(patch.astype(np.float32) * np.float32(brightness / 255.0), 0.0, 1.0)
        box = np.asarray(box, dtype=np.float64)
        if flip:
            image, mask, box = image[:, ::-1], mask[:, ::-1], flip_box(box, 1.0)
        image = (image - self.mean) / self.std
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return image, torch.from_numpy(np.ascontiguousarray(mask)), box
