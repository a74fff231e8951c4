"""The crop's memory is bounded whatever the search area factor and the box (``MAX_CROP_BYTES``), and large crops
still sample the right square: the same points as the official padded crop, the true resize factor, boxes mapped
back exactly. Real frames of ``../shared/eval/bag``; the arrays are measured with ``tracemalloc`` (NumPy reports
its buffers to it, including those OpenCV returns)."""
import math
import tracemalloc

import cv2
import numpy as np
import pytest

from node_io_helpers import real_frames
from stark_ros.tracker import StarkTracker, TrackerParams, crop


@pytest.fixture(scope='module')
def frame():
    """Frame 0 of ``bag`` upscaled to 1280 x 960 (RGB), so that image-sized boxes give large crops."""
    images, _ = real_frames('bag', 1)
    return cv2.resize(cv2.cvtColor(images[0], cv2.COLOR_BGR2RGB), (1280, 960))


def _peak_bytes(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize('box, factor, size', [
    ((100.0, 80.0, 700.0, 600.0), 7.0, 320),      # crop side 4537: just over MAX_PADDED_CROP_SIDE
    ((600.0, 500.0, 300.0, 200.0), 18.0, 320),    # crop mostly padding, to the bottom right
    ((0.0, 0.0, 1280.0, 960.0), 4.0, 128),        # image-sized box, template size
])
def test_large_crops_sample_what_the_padded_crop_would(frame, box, factor, size, monkeypatch):
    direct = crop.sample_target(frame, box, factor, size)
    assert direct.crop_sz > crop.MAX_PADDED_CROP_SIDE
    monkeypatch.setattr(crop, 'MAX_PADDED_CROP_SIDE', 10 ** 9)    # the official padded crop, for reference
    padded = crop.sample_target(frame, box, factor, size)
    assert direct.crop_sz == padded.crop_sz and direct.resize_factor == padded.resize_factor == size / padded.crop_sz
    # same sample points and weights: values differ only by OpenCV's fixed-point rounding (warpAffine vs resize)
    assert np.abs(direct.patch.astype(int) - padded.patch.astype(int)).max() <= 1
    assert np.array_equal(direct.mask, padded.mask)


@pytest.mark.parametrize('factor', [20.0, 1000.0, 1e6])
def test_crop_memory_is_bounded_for_any_factor(frame, factor):
    """An image-sized box times search_factor 20 (the node's maximum) asks for a 22172-pixel square (1.4 GB padded);
    1e6 for 1.1e9 pixels. The arrays allocated stay under MAX_CROP_BYTES plus the patch."""
    box = (0.0, 0.0, 1280.0, 960.0)
    result, peak = _peak_bytes(crop.sample_target, frame, box, factor, 320)
    assert result.crop_sz == math.ceil(math.sqrt(1280 * 960) * factor)
    assert result.patch.shape == (320, 320, 3) and result.mask.shape == (320, 320)
    assert peak <= crop.MAX_CROP_BYTES + 4 * 320 * 320 * 3, peak
    # direct sampling takes far less than the bound
    assert peak <= 2 * 1024 * 1024, peak


def test_the_direct_crop_puts_the_image_where_the_resize_factor_says(frame):
    """A bright square in a black image, a crop over MAX_PADDED_CROP_SIDE: its centroid in the patch, mapped back
    through ``resize_factor`` and the crop corner, lands on the square's centre (within one patch pixel)."""
    image = np.zeros((960, 1280, 3), np.uint8)
    image[400:500, 700:800] = 255
    box = (100.0, 80.0, 700.0, 600.0)
    result = crop.sample_target(image, box, 7.0, 320)
    assert result.crop_sz > crop.MAX_PADDED_CROP_SIDE
    ys, xs = np.nonzero(result.patch[..., 0] > 127)
    x1, y1, _ = crop.crop_window(box, 7.0)
    centre = ((xs.mean() + 0.5) / result.resize_factor + x1, (ys.mean() + 0.5) / result.resize_factor + y1)
    assert np.allclose(centre, (750.0, 450.0), atol=1.0 / result.resize_factor), centre


def test_tracking_with_huge_factors_and_an_image_sized_box_stays_bounded_and_finite(frame):
    """The tracker itself (shipped lite0 model): template factor 10 and search factor 20 (the node's maxima) and
    an absurd 1e5, on an image-sized target: every box is finite and inside the image, the crop arrays stay
    bounded."""
    for factor in (20.0, 1e5):
        params = TrackerParams(template_factor=min(factor, 10.0), search_factor=factor)
        tracker = StarkTracker.from_checkpoint('', device='cpu', params=params)
        _, peak = _peak_bytes(tracker.initialize, frame, (0.0, 0.0, 1280.0, 960.0))
        assert peak <= crop.MAX_CROP_BYTES, peak
        result, peak = _peak_bytes(tracker.track, frame)
        assert peak <= crop.MAX_CROP_BYTES, peak
        x, y, w, h = result.box
        assert all(math.isfinite(v) for v in result.box)
        assert 0 <= x and 0 <= y and x + w <= 1280 + 1e-6 and y + h <= 960 + 1e-6 and w > 0 and h > 0
