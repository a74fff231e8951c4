"""Training crops and augmentation on real frames (bikes.mp4): where the box lands, jitter bounds, rejection rules,
flips. Formulas: STARK_FACTS.md section 12."""
import math

import cv2
import numpy as np
import pytest
import torch

from stark_ros.tracker.crop import IMAGENET_MEAN, IMAGENET_STD, sample_target
from stark_ros.training.augmentation import Augmentation, flip_box
from stark_ros.training.processing import Processing, box_in_crop, crop_is_usable, jitter_box
from training_frames import HEIGHT, WIDTH, decode_frames

NO_AUGMENTATION = dict(grayscale_probability=0.0, joint_flip_probability=0.0, brightness_jitter=0.0,
                       crop_flip_probability=0.0)


@pytest.fixture(scope='module')
def frame():
    return cv2.cvtColor(decode_frames(10)[-1], cv2.COLOR_BGR2RGB)


def test_box_in_crop_formula():
    # hand computation: S = 320, resize factor 2, GT centre 10 px right / 4 px above the crop centre
    box = box_in_crop([100, 50, 40, 20], [85, 49, 50, 30], 2.0, 320)
    centre = np.array([159.5 + (120 - 110) * 2, 159.5 + (60 - 64) * 2])
    expected = np.concatenate([centre - [40, 20], [80, 40]]) / 320
    np.testing.assert_allclose(box, expected, rtol=0, atol=1e-12)


def test_gt_region_of_the_crop_shows_the_gt_region_of_the_frame(frame):
    """Pixel-wise: the crop's GT box (search jitter, real crop) holds the frame's GT region, and a shifted box not."""
    processing = Processing(augmentation=Augmentation(**NO_AUGMENTATION))
    gt = np.array([262.0, 71.0, 96.0, 84.0])
    x, y, w, h = gt.astype(int)
    checked = 0
    for seed in range(40):
        cropped = processing.crop(frame, gt, processing.search, np.random.default_rng(seed))
        if cropped is None:
            continue
        patch, mask, box = cropped
        x0, y0, x1, y1 = np.round(np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]]) * 320).astype(int)
        if min(x0, y0) < 0 or max(x1, y1) > 320 or mask[y0:y1, x0:x1].any() or x1 - x0 < 8:
            continue  # the jitter moved part of the target out of the crop
        region = patch[y0:y1, x0:x1].astype(np.float64)
        truth = cv2.resize(frame[y:y + h, x:x + w], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        shifted = cv2.resize(frame[y:y + h, x + w // 4:x + w // 4 + w], (x1 - x0, y1 - y0),
                             interpolation=cv2.INTER_AREA)
        error = np.abs(region - truth).mean()
        assert error < 2, (seed, error)  # measured <= 0.8 grey levels; a quarter-box shift gives ~5
        assert error < 0.5 * np.abs(region - shifted).mean(), seed
        checked += 1
    assert checked >= 8


def test_jitter_bounds_and_distribution():
    rng = np.random.default_rng(0)
    gt = np.array([100.0, 80.0, 60.0, 30.0])
    jittered = np.array([jitter_box(gt, 0.5, 4.5, rng) for _ in range(4000)])
    log_scale = np.log(jittered[:, 2:] / gt[2:])
    assert abs(log_scale.mean()) < 0.03 and abs(log_scale.std() - 0.5) < 0.03
    offset = jittered[:, :2] + 0.5 * jittered[:, 2:] - (gt[:2] + 0.5 * gt[2:])
    limit = np.sqrt(jittered[:, 2] * jittered[:, 3]) * 4.5 / 2
    assert (np.abs(offset) <= limit[:, None] + 1e-9).all()
    assert (np.abs(offset) > 0.9 * limit[:, None]).any()  # the bound is reached, not just respected
    np.testing.assert_array_equal(jitter_box(gt, 0.0, 0.0, rng), gt)  # templates: no jitter


def test_template_crop_without_jitter_is_the_inference_crop(frame):
    processing = Processing(augmentation=Augmentation(**NO_AUGMENTATION))
    gt = np.array([250.5, 60.0, 70.0, 90.0])
    patch, mask, box = processing.crop(frame, gt, processing.template, np.random.default_rng(1))
    reference = sample_target(frame, gt, 2.0, 128)
    np.testing.assert_array_equal(patch, reference.patch)
    np.testing.assert_array_equal(mask, reference.mask)
    side = 128 / math.ceil(math.sqrt(70 * 90) * 2)
    np.testing.assert_allclose(box, [63.5 / 128 - 35 * side / 128, 63.5 / 128 - 45 * side / 128,
                                     70 * side / 128, 90 * side / 128], atol=1e-12)


def test_rejection_rules(frame):
    processing = Processing(augmentation=Augmentation(**NO_AUGMENTATION))
    rng = np.random.default_rng(0)
    for bad in ([10, 10, 0, 20], [10, 10, 20, -1], [np.nan, 10, 20, 20]):
        assert processing.crop(frame, bad, processing.template, rng) is None, bad  # crop_sz < 1 / empty box
    assert processing.crop(frame, [5000, 100, 50, 50], processing.template, rng) is None  # takes no pixel
    # 64x64 box, factor 2 -> 128 px crop at scale 1 whose only image column is its last one (x = 127): the mask
    # is not all padding, but at the backbone's feature positions (pixel 16 i) it is
    mask = sample_target(frame, [-95, 100, 64, 64], 2.0, 128).mask
    assert not mask.all() and mask[::16, ::16].all()
    assert processing.crop(frame, [-95, 100, 64, 64], processing.template, rng) is None
    assert processing.crop(frame, [-80, 100, 64, 64], processing.template, rng) is not None
    assert not crop_is_usable(np.ones((128, 128), bool))
    usable = np.ones((128, 128), bool)
    usable[16, 32] = False
    assert crop_is_usable(usable)


def test_processing_output_contract(frame):
    processing = Processing()
    sample = processing([frame, frame], [np.array([250.0, 60, 70, 90])] * 2, frame,
                        np.array([260.0, 64, 72, 88]), np.random.default_rng(3))
    assert sample['template_images'].shape == (2, 3, 128, 128) and sample['template_images'].dtype == torch.float32
    assert sample['template_masks'].shape == (2, 128, 128) and sample['template_masks'].dtype == torch.bool
    assert sample['search_image'].shape == (3, 320, 320) and sample['search_mask'].dtype == torch.bool
    assert sample['search_box'].shape == (4,) and sample['search_box'].dtype == torch.float32


def test_flip_box_and_joint_flip_move_the_same_pixels(frame):
    np.testing.assert_array_equal(flip_box([10, 5, 20, 7], 640), [610, 5, 20, 7])
    np.testing.assert_allclose(flip_box([0.1, 0.2, 0.3, 0.4], 1.0), [0.6, 0.2, 0.3, 0.4])
    augmentation = Augmentation(grayscale_probability=0.0, joint_flip_probability=1.0)
    box = np.array([100.0, 40.0, 50.0, 30.0])
    (flipped,), (moved,) = augmentation.joint([frame], [box], np.random.default_rng(0))
    x, y, w, h = moved.astype(int)
    assert moved[0] == WIDTH - 150
    np.testing.assert_array_equal(flipped[y:y + h, x:x + w], frame[40:70, 100:150][:, ::-1])
    assert flipped.shape == frame.shape and frame is not flipped


def test_joint_draw_is_shared_and_grayscale(frame):
    augmentation = Augmentation(grayscale_probability=1.0, joint_flip_probability=0.5)
    other = frame[:, ::-1].copy()
    for seed in range(6):
        frames, boxes = augmentation.joint([frame, other, frame], [np.array([1.0, 2, 3, 4])] * 3,
                                           np.random.default_rng(seed))
        assert len({b[0] for b in boxes}) == 1  # all flipped or none
        for image in frames:
            assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        assert frames[0] is frames[2]  # a shared frame is transformed once


def test_crop_augmentation_flip_brightness_and_normalisation(frame):
    patch = frame[:128, 200:328].copy()
    mask = np.zeros((128, 128), bool)
    mask[:, :10] = True
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    flipper = Augmentation(brightness_jitter=0.0, crop_flip_probability=1.0)
    image, out_mask, box = flipper.crop(patch, mask, np.array([0.1, 0.2, 0.3, 0.4]), np.random.default_rng(0))
    restored = (image.numpy().transpose(1, 2, 0) * std + mean) * 255
    np.testing.assert_allclose(restored, patch[:, ::-1], atol=1e-3)
    assert out_mask[:, -10:].all() and not out_mask[:, :-10].any()
    np.testing.assert_allclose(box, [0.6, 0.2, 0.3, 0.4])
    bright = Augmentation(brightness_jitter=0.2, crop_flip_probability=0.0)
    factors = []
    for seed in range(20):
        image, _, _ = bright.crop(patch, mask, np.zeros(4), np.random.default_rng(seed))
        value = (image.numpy().transpose(1, 2, 0) * std + mean)
        dark = patch < 150  # not clamped at 1 even with factor 1.2
        factors.append(np.median(value[dark] * 255 / np.maximum(patch[dark], 1)))
        assert value.max() <= 1 + 1e-6 and value.min() >= -1e-6
    assert 0.8 - 1e-3 <= min(factors) < 0.9 and 1.1 < max(factors) <= 1.2 + 1e-3
