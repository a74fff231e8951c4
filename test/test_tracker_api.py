"""Tracker input validation, crop geometry properties and the ROS-free import guarantee."""
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from oracles import REPO_ROOT, oracle
from stark_ros.errors import InvalidBoxError, InvalidImageError
from stark_ros.tracker import StarkTracker, TrackerParams
from stark_ros.tracker.crop import clip_box, crop_window, padding_mask, sample_target


@pytest.fixture(scope='module')
def tracker():
    return StarkTracker.from_checkpoint('synthetic', 's50', 'cpu')


@pytest.fixture(scope='module')
def frame():
    return oracle('s50')['frames_rgb'][0]


@pytest.mark.parametrize('box, reason', [
    ((10, 10, 0, 20), 'empty'),
    ((10, 10, 20, -1), 'empty'),
    ((float('nan'), 10, 20, 20), 'not finite'),
    ((10, 10, float('inf'), 20), 'not finite'),
    ((320, 10, 20, 20), 'does not overlap'),
    ((-30, 10, 30, 20), 'does not overlap'),
    ((10, 240, 20, 20), 'does not overlap'),
    ((-300, 100, 310, 1), 'too far outside'),
    ((10, 10, 1e6, 1e6), 'larger than the 320x240 image'),   # its crops would need 1.2 TB
    ((0, 0, 321, 10), 'larger than'),
    ((1, 2, 3), '4 numbers'),
    (('a', 2, 3, 4), '4 numbers'),
])
def test_bad_init_box_is_rejected_and_loses_nothing(tracker, frame, box, reason):
    tracker.initialize(frame, (100, 80, 40, 30))
    before = tracker.state
    with pytest.raises(InvalidBoxError, match=reason):
        tracker.initialize(frame, box)
    assert tracker.state == before
    assert tracker.track(frame).frame_id == 1


@pytest.mark.parametrize('image, reason', [
    (np.zeros((24, 32, 3), np.float32), 'uint8'),
    (np.zeros((24, 32), np.uint8), 'HxWx3'),
    (np.zeros((24, 32, 4), np.uint8), 'HxWx3'),
    (np.zeros((0, 32, 3), np.uint8), 'HxWx3'),
    ([[0, 0, 0]], 'numpy array'),
])
def test_bad_image_is_rejected(tracker, frame, image, reason):
    with pytest.raises(InvalidImageError, match=reason):
        tracker.initialize(image, (1, 1, 5, 5))
    tracker.initialize(frame, (100, 80, 40, 30))
    with pytest.raises(InvalidImageError, match=reason):
        tracker.track(image)
    assert tracker.track(frame).frame_id == 1


def test_track_before_initialize():
    fresh = StarkTracker.from_checkpoint('synthetic', 's50', 'cpu')
    assert not fresh.is_initialized and fresh.state is None
    with pytest.raises(RuntimeError, match='before initialize'):
        fresh.track(np.zeros((48, 64, 3), np.uint8))


def test_reinitialise_replaces_target(tracker, frame):
    tracker.initialize(frame, (100, 80, 40, 30))
    tracker.track(frame)
    tracker.initialize(frame, (10, 20, 50, 60))
    assert tracker.state == (10, 20, 50, 60)
    assert tracker.track(frame).frame_id == 1


def test_synthetic_weights_are_flagged():
    t = StarkTracker.from_checkpoint('synthetic', 'auto', 'cpu')
    assert t.synthetic_weights and t.variant == 'st50' and t.has_score_head


@pytest.mark.parametrize('kwargs', [
    dict(update_interval=0), dict(update_interval=2.5), dict(score_threshold=1.5), dict(score_threshold=-0.1),
    dict(search_size=300), dict(template_size=0), dict(search_factor=0), dict(template_factor=-2),
])
def test_bad_params(kwargs):
    with pytest.raises(ValueError):
        TrackerParams(**kwargs)


def test_search_size_must_fit_network():
    with pytest.raises(ValueError, match='search_size'):
        StarkTracker.from_checkpoint('synthetic', 's50', 'cpu').__class__(
            StarkTracker.from_checkpoint('synthetic', 's50', 'cpu').network, TrackerParams(search_size=256))


def test_clip_box_truncates_at_the_border():
    """Official clip_box examples for a 640x480 image (MMTRACK_FACTS.md D1, official column)."""
    assert clip_box([-20, 100, 100, 80], 480, 640) == [0, 100, 80, 80]
    assert clip_box([600, 100, 100, 80], 480, 640) == [600, 100, 40, 80]
    assert clip_box([-50, -50, 30, 30], 480, 640) == [0, 0, 10, 10]
    assert clip_box([100, 100, -3, -4], 480, 640) == [100, 100, 10, 10]


def test_crop_rounding_is_half_to_even():
    assert crop_window((100, 100, 25, 25), 2.0) == (88, 88, 50)      # round(87.5) = 88
    assert crop_window((101, 101, 25, 25), 2.0) == (88, 88, 50)      # round(88.5) = 88
    assert crop_window((100, 100, 25, 25), 3.0) == (75, 75, 75)      # ceil(75.0) = 75
    assert crop_window((100, 100, 25, 24), 2.0) == (88, 88, 49)      # ceil(48.98) = 49; round(87.5) = 88
    with pytest.raises(InvalidBoxError, match='too small'):
        crop_window((10, 10, 0, 5), 2.0)


def _reference_crop(image, x1, y1, side):
    """Independent crop: image pixels where the official crop takes them, black and flagged elsewhere.

    Official quirk (STARK_FACTS.md 9.2 step 3): once the window reaches the right (bottom) image edge, the last
    image column (row) is replaced by padding.
    """
    height, width = image.shape[:2]
    col_end = width - 1 if x1 + side >= width else width
    row_end = height - 1 if y1 + side >= height else height
    patch = np.zeros((side, side, 3), np.uint8)
    padded = np.ones((side, side), bool)
    for i in range(side):
        for j in range(side):
            r, c = y1 + i, x1 + j
            if 0 <= r < row_end and 0 <= c < col_end:
                patch[i, j] = image[r, c]
                padded[i, j] = False
    return patch, padded


@settings(max_examples=150, deadline=None)
@given(x=st.floats(-30, 60), y=st.floats(-30, 45), w=st.floats(1, 40), h=st.floats(1, 40),
       factor=st.sampled_from([1.0, 1.5, 2.0, 2.5]))
def test_crop_matches_independent_reference_when_not_resized(x, y, w, h, factor):
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, size=(36, 48, 3), dtype=np.uint8)   # no zero pixel: black means padding
    x1, y1, side = crop_window((x, y, w, h), factor)
    expected_patch, expected_mask = _reference_crop(image, x1, y1, side)
    if expected_mask.all():
        with pytest.raises(InvalidBoxError, match='outside'):
            sample_target(image, (x, y, w, h), factor, side)
        return
    crop = sample_target(image, (x, y, w, h), factor, side)     # output size == crop side: no resampling
    assert crop.crop_sz == side == math.ceil(math.sqrt(w * h) * factor) and crop.resize_factor == 1.0
    np.testing.assert_array_equal(crop.patch, expected_patch)
    np.testing.assert_array_equal(crop.mask, expected_mask)


def _official_mask(crop_sz, padding, size):
    """STARK_FACTS.md 9.2: the full float64 crop mask, 1 on padding, resized INTER_LINEAR, cast to bool."""
    left, top, right, bottom = padding
    mask = np.ones((crop_sz, crop_sz), dtype=np.float64)
    mask[top:crop_sz - bottom, left:crop_sz - right] = 0
    return cv2.resize(mask, (size, size)).astype(np.bool_)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), crop_sz=st.integers(2, 1400), size=st.sampled_from([128, 320, 17, 700]))
def test_padding_mask_equals_the_official_2d_resize(data, crop_sz, size):
    """The separable mask of sample_target equals the official full-size mask for any geometry: down- and
    up-sampling, padding on any side, and the exact 2x and 1x scales (where OpenCV switches code paths)."""
    crop_sz = data.draw(st.sampled_from([crop_sz, 2 * size, size]))
    inner_w = data.draw(st.integers(1, crop_sz))
    inner_h = data.draw(st.integers(1, crop_sz))
    left = data.draw(st.integers(0, crop_sz - inner_w))
    top = data.draw(st.integers(0, crop_sz - inner_h))
    padding = (left, top, crop_sz - inner_w - left, crop_sz - inner_h - top)
    expected = _official_mask(crop_sz, padding, size)
    got = padding_mask(crop_sz, padding, size)
    assert got.shape == (size, size) and got.dtype == np.bool_
    np.testing.assert_array_equal(got, expected)


def test_padding_mask_of_a_large_crop_is_the_official_one():
    """A 500 px target in a factor-5 search region: the 2,500 px crop the separable mask exists for."""
    image = np.random.default_rng(1).integers(1, 256, size=(480, 640, 3), dtype=np.uint8)
    box = (70.0, -10.0, 500.0, 500.0)
    crop = sample_target(image, box, 5.0, 320)
    x1, y1, side = crop_window(box, 5.0)
    left, top = max(0, -x1), max(0, -y1)
    right, bottom = max(0, x1 + side - 640 + 1), max(0, y1 + side - 480 + 1)
    assert side == 2500 and min(left, top, right, bottom) > 0
    np.testing.assert_array_equal(crop.mask, _official_mask(side, (left, top, right, bottom), 320))
    assert 0 < crop.mask.sum() < 320 * 320


def test_tracker_core_imports_without_rclpy():
    code = ('import sys, stark_ros.tracker, stark_ros.model, stark_ros.tracker.crop; '
            'assert not any(m.split(".")[0] == "rclpy" for m in sys.modules), "rclpy imported"')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO_ROOT)


@pytest.mark.parametrize('backend,precision', [('torch', None), ('torch-fast', 'fp32')])
def test_warm_up_keeps_the_target_and_the_numbers(backend, precision):
    from oracles import BOX_TOL_PX, SCORE_TOL, oracle_params
    o = oracle('st50')
    tracker = StarkTracker.from_checkpoint('synthetic', 'st50', 'cpu', params=oracle_params('st50'), backend=backend,
                                           precision=precision)
    tracker.initialize(o['frames_rgb'][0], o['init_box'])
    state, templates = tracker.state, list(tracker._templates)
    assert tracker.warm_up(passes=1) > 0
    assert tracker.state == state and all(a is b for a, b in zip(tracker._templates, templates))
    result = tracker.track(o['frames_rgb'][1])
    np.testing.assert_allclose(result.box, o['boxes'][1], atol=BOX_TOL_PX, rtol=0)
    assert abs(result.score - o['scores'][1]) < SCORE_TOL
