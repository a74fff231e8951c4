"""The training sample source of STARK: datasets mixed by ratio -> frames -> crops -> one sample per index.

Source: STARK_FACTS.md section 12 (official ``lib/train/data/sampler.py``, frame sampler modes 'causal' and
'trident_pro') and 12b, without the official defects: a missing frame raises at once instead of being retried for
ever, and rejected draws are retried a bounded number of times.

Frame choice, per sequence with visibility ``v`` (N frames):

* ``'causal'`` (STARK-S, Lightning; 1 template): template frame ``t0`` a random visible frame followed by a visible
  frame; search frame a random visible frame in ``(t0, t0 + gap)``, the gap growing by 5 until that range holds
  one (computed directly, no loop);
* ``'trident'`` (``'trident_pro'``, STARK-ST; templates [initial, dynamic]): initial template ``t0`` and search
  ``s`` independent random visible frames; the dynamic template any frame (invisible allowed) of
  ``[s, s + gap)`` if ``t0 >= s``, else of ``[s - gap, s)``, clipped to the sequence.

A frame counts as visible when the reader says so and its box is finite with a positive width and height (as in
pytracking's readers, visible and valid). Videos are used only with more than ``2 * (n_search + n_template)``
visible frames and at least 20 frames; image
datasets (``is_video`` False) use their one frame for every slot. Stage 2 makes a negative with probability
``1 - positive_probability``: the search frame becomes a frame of the same video where the target is invisible,
boxed by the centred ``W/8 x H/8`` box, or, if the video has none or is an image, a random frame of a random
sequence (its own box if visible, else the centred box); the label is then 0.

Determinism: sample ``i`` of epoch ``e`` depends only on ``(seed, e, i)`` (one ``numpy.random.Generator`` seeded
with that triple), so it is the same for any number of DataLoader workers or processes.
"""
import math
from collections import Counter

import numpy as np
import torch

from ..datasets.base import DatasetError, read_frame
from .processing import Processing

#: Minimum length of a usable video, frames (STARK_FACTS.md section 12).
MIN_SEQUENCE_LENGTH = 20
#: How much the causal gap grows while it holds no visible frame, frames.
GAP_INCREASE = 5
_TEMPLATES = {'causal': 1, 'trident': 2, 'trident_pro': 2}


class SamplingError(DatasetError):
    """No acceptable sample was found within the allowed number of draws; the message counts the reasons."""


def visible_frames(sequence):
    """(N,) bool: the target is visible (reader's flag) and its box finite with width and height > 0."""
    boxes = sequence.boxes
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    return sequence.visible & valid


def centred_box(image_shape, fraction=8):
    """The ``W/fraction x H/fraction`` box centred in an (H, W, ...) image, ``xywh`` pixels (negative samples)."""
    height, width = image_shape[:2]
    w, h = width / fraction, height / fraction
    return np.array([0.5 * (width - w), 0.5 * (height - h), w, h])


class TrainingSampler(torch.utils.data.Dataset):
    """``samples_per_epoch`` training samples drawn from datasets mixed by ratio (map-style, any DataLoader).

    ``sampler[i]`` is a dict of CPU tensors (the contract with the training loop):
    ``template_images`` (T, 3, Ht, Wt) float32 ImageNet-normalised RGB (T = 1 causal, 2 trident:
    [initial, dynamic]); ``template_masks`` (T, Ht, Wt) bool, True = padding; ``search_image`` (3, Hs, Ws)
    float32; ``search_mask`` (Hs, Ws) bool; ``search_box`` (4,) float32 ground truth ``xywh`` divided by Hs;
    ``label`` () float32, 1.0 positive, 0.0 negative (stage 2 only).

    Args:
        datasets: list of :class:`~stark_ros.datasets.base.SequenceDataset`.
        ratios: sampling weight per dataset (official 1:1:1:1); None = equal.
        samples_per_epoch: ``len(sampler)`` (official 60000, global across processes).
        mode: ``'causal'`` or ``'trident'`` (alias ``'trident_pro'``).
        max_gap: frame gap of the search (causal) or dynamic template (trident) range (official 200).
        stage: 1 (localisation) or 2 (score head: positives and negatives).
        positive_probability: stage 2 share of positives (official 0.5).
        template_size, template_factor, search_size, search_factor, template_scale_jitter,
        template_center_jitter, search_scale_jitter, search_center_jitter: see
            :class:`~.processing.Processing` (official 128, 2.0, 320, 5.0, 0, 0, 0.5, 4.5).
        augmentation: :class:`~.augmentation.Augmentation` (official defaults if None).
        seed: base seed of every draw.
        max_attempts: draws (sequence or crop rejections) allowed per sample before :class:`SamplingError`.
    Raises:
        ValueError: bad arguments. ``__getitem__`` raises MissingFrameError (a frame is missing or unreadable),
        DatasetError (a malformed annotation) or SamplingError, never retrying them silently.
    """

    def __init__(self, datasets, ratios=None, samples_per_epoch=60000, mode='causal', max_gap=200, stage=1,
                 positive_probability=0.5, template_size=128, template_factor=2.0, search_size=320,
                 search_factor=5.0, template_scale_jitter=0.0, template_center_jitter=0.0,
                 search_scale_jitter=0.5, search_center_jitter=4.5, augmentation=None, seed=42,
                 max_attempts=100):
        if not datasets:
            raise ValueError('at least one dataset is needed')
        ratios = [1.0] * len(datasets) if ratios is None else [float(r) for r in ratios]
        if len(ratios) != len(datasets) or any(r < 0 for r in ratios) or sum(ratios) <= 0:
            raise ValueError('ratios must be one non-negative weight per dataset with a positive sum, got %r'
                             % (ratios,))
        if mode not in _TEMPLATES:
            raise ValueError('mode must be one of %s, got %r' % (sorted(_TEMPLATES), mode))
        if stage not in (1, 2):
            raise ValueError('stage must be 1 or 2, got %r' % (stage,))
        if samples_per_epoch < 1 or max_gap < 1 or max_attempts < 1:
            raise ValueError('samples_per_epoch, max_gap and max_attempts must be >= 1')
        self.datasets = list(datasets)
        self.names = [dataset.sequence_names() for dataset in self.datasets]
        for dataset, names in zip(self.datasets, self.names):
            if len(names) == 0:
                raise ValueError('dataset %r has no sequence' % getattr(dataset, 'name', dataset))
        self.probabilities = np.asarray(ratios) / sum(ratios)
        self.samples_per_epoch = int(samples_per_epoch)
        self.mode = 'trident' if mode == 'trident_pro' else mode
        self.n_template = _TEMPLATES[mode]
        self.max_gap = int(max_gap)
        self.stage = stage
        self.positive_probability = float(positive_probability)
        self.processing = Processing(template_size, template_factor, search_size, search_factor,
                                     template_scale_jitter, template_center_jitter, search_scale_jitter,
                                     search_center_jitter, augmentation)
        self.seed = int(seed)
        self.max_attempts = int(max_attempts)
        # in shared memory: DataLoader workers that outlive an epoch (persistent_workers=True) see set_epoch too
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self):
        """The epoch whose samples ``__getitem__`` returns."""
        return int(self._epoch)

    def set_epoch(self, epoch):
        """Select the epoch whose samples ``__getitem__`` returns; call it before iterating over the epoch.

        The value lives in shared memory, so running DataLoader workers (``persistent_workers=True``) use it from
        their next sample on.
        """
        self._epoch.fill_(int(epoch))

    def __len__(self):
        return self.samples_per_epoch

    def generator(self, index):
        """The ``numpy.random.Generator`` of sample ``index`` of the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index):
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError('sample %d out of range [0, %d)' % (index, self.samples_per_epoch))
        rng = self.generator(index)
        reasons = Counter()
        dataset_index = None
        for _ in range(self.max_attempts):
            if dataset_index is None:
                dataset_index = int(rng.choice(len(self.datasets), p=self.probabilities))
            dataset = self.datasets[dataset_index]
            sequence = self._random_sequence(dataset_index, rng)
            if dataset.is_video and not self._usable(sequence):
                reasons['%s: sequence with too few (visible) frames' % dataset.name] += 1
                continue  # another sequence of the same dataset, as the official sampler does
            sample = self._sample(dataset, sequence, rng)
            if sample is None:
                reasons['%s: crop rejected (empty box or all padding)' % dataset.name] += 1
                dataset_index = None
                continue
            return sample
        raise SamplingError('sample %d of epoch %d: no acceptable sample in %d draws (%s); a video needs > %d '
                            'visible and >= %d frames' % (index, self.epoch, self.max_attempts,
                                                          ', '.join('%d x %s' % (n, r) for r, n in reasons.items()),
                                                          2 * (1 + self.n_template), MIN_SEQUENCE_LENGTH))

    def _random_sequence(self, dataset_index, rng):
        names = self.names[dataset_index]
        return self.datasets[dataset_index].load_sequence(names[int(rng.integers(len(names)))])

    def _usable(self, sequence):
        """Official rule: more than 2 * (n_search + n_template) visible frames and at least 20 frames."""
        return int(visible_frames(sequence).sum()) > 2 * (1 + self.n_template) \
            and len(sequence) >= MIN_SEQUENCE_LENGTH

    def frame_ids(self, sequence, rng):
        """(template frame ids, search frame id) of a usable video, drawn as the mode says (module docstring)."""
        visible_ids = np.flatnonzero(visible_frames(sequence))
        if self.mode == 'causal':
            position = int(rng.integers(len(visible_ids) - 1))  # t0 must have a later visible frame
            t0, next_visible = int(visible_ids[position]), int(visible_ids[position + 1])
            grow = max(0, math.ceil((next_visible - t0 - self.max_gap + 1) / GAP_INCREASE))
            end = t0 + self.max_gap + GAP_INCREASE * grow
            candidates = visible_ids[(visible_ids > t0) & (visible_ids < end)]
            return [t0], int(rng.choice(candidates))
        t0, search = (int(v) for v in rng.choice(visible_ids, size=2, replace=True))
        if t0 >= search:
            low, high = search, min(search + self.max_gap, len(sequence))
        else:
            low, high = max(search - self.max_gap, 0), search
        return [t0, int(rng.integers(low, high))], search

    def _sample(self, dataset, sequence, rng):
        """One attempt on a chosen sequence: frames, negatives, processing; None if a crop is rejected."""
        if dataset.is_video:
            template_ids, search_id = self.frame_ids(sequence, rng)
        else:
            template_ids, search_id = [0] * self.n_template, 0
        cache = {}

        def frame(seq, frame_id):
            path = seq.frames[frame_id]
            if path not in cache:
                cache[path] = read_frame(path)
            return cache[path]

        template_frames = [frame(sequence, i) for i in template_ids]
        template_boxes = [sequence.boxes[i] for i in template_ids]
        positive = self.stage == 1 or rng.random() < self.positive_probability
        if positive:
            search_frame, search_box = frame(sequence, search_id), sequence.boxes[search_id]
        else:
            search_frame, search_box = self._negative(dataset, sequence, frame, rng)
        sample = self.processing(template_frames, template_boxes, search_frame, search_box, rng)
        if sample is not None:
            sample['label'] = torch.tensor(1.0 if positive else 0.0, dtype=torch.float32)
        return sample

    def _negative(self, dataset, sequence, frame, rng):
        """(frame, box) of a negative search region (STARK_FACTS.md section 12, stage 2)."""
        invisible_ids = np.flatnonzero(~sequence.visible) if dataset.is_video else []
        if len(invisible_ids):
            image = frame(sequence, int(rng.choice(invisible_ids)))
            return image, centred_box(image.shape)
        other_index = int(rng.choice(len(self.datasets), p=self.probabilities))
        other = self._random_sequence(other_index, rng)
        frame_id = int(rng.integers(len(other)))
        image, box = frame(other, frame_id), np.asarray(other.boxes[frame_id], dtype=np.float64)
        return image, (box if visible_frames(other)[frame_id] else centred_box(image.shape))
