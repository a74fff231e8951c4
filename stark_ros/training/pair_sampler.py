"""Template/search pairs drawn from a feature cache (:mod:`.feature_cache`): dense sampling over cached crops.

A sample is a search crop and one of the objects labelled in it (the crop's own target, or a target of another
sequence pasted into it), with two templates of that object's sequence taken near the object's frame (a static
template and a dynamic one, STARK-ST's ``trident_pro`` idea: STARK_FACTS.md section 12). In stage 2 a fraction of
the samples are negatives (label 0): templates of a sequence that has no object in the crop, either the crop's own
sequence on a background crop (the target left the search region) or another sequence (a distractor-only crop).

Draws depend only on ``(seed, epoch, index)``, so an epoch's samples are the same after a resume.
"""
import numpy as np
import torch

from .feature_cache import FeatureCache


class CachedPairSampler(torch.utils.data.Dataset):
    """Samples over a :class:`~.feature_cache.FeatureCache`.

    Args:
        cache: the cache (or its folder).
        samples_per_epoch: length of an epoch.
        stage: 1 (positives only, box losses) or 2 (positives and negatives, score loss).
        max_gap: largest distance in source frames between a template's frame and the object's frame.
        negative_ratio: stage 2: fraction of negatives.
        own_target_probability: chance that a crop with pasted objects is labelled with its own target.
        background_negative_probability: stage 2: chance a negative is a background crop of the template's own
            sequence (else a crop without the template's sequence).
        seed: base seed.

    Items: dict with ``template_feats`` (2, C, ht, wt) float16, ``template_masks`` (2, ht, wt) bool,
    ``search_feat`` (C, hs, ws) float16, ``search_mask`` (hs, ws) bool, ``search_box`` (4,) float32 ``xywh``
    normalised by the crop side (zeros for a negative), ``label`` () float32 (1 positive, 0 negative).

    Raises:
        ValueError: a bad stage or ratio, or a cache without objects.
    """

    def __init__(self, cache, samples_per_epoch, stage=1, max_gap=200, negative_ratio=0.5,
                 own_target_probability=0.5, background_negative_probability=0.5, seed=0):
        if stage not in (1, 2):
            raise ValueError('stage must be 1 or 2, got %r' % (stage,))
        if not 0 <= negative_ratio < 1:
            raise ValueError('negative_ratio must be in [0, 1), got %r' % (negative_ratio,))
        self.cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
        index = self.cache.index
        if not len(index['object_search']):
            raise ValueError('the feature cache in %s labels no object' % self.cache.folder)
        self.samples_per_epoch = int(samples_per_epoch)
        self.stage, self.max_gap, self.seed = stage, int(max_gap), int(seed)
        self.negative_ratio = negative_ratio if stage == 2 else 0.0
        self.own_target_probability = own_target_probability
        self.background_negative_probability = background_negative_probability
        self._epoch = 0
        # objects of crop c: rows object_start[c] .. object_start[c + 1] - 1 (object_search is sorted)
        crops = len(index['search_frame'])
        self.object_start = np.searchsorted(index['object_search'], np.arange(crops + 1))
        self.labelled_crops = np.flatnonzero(np.diff(self.object_start) > 0)
        self.frame_rows = {}          # sequence -> (frame ids, frame rows), sorted by frame id
        for seq in np.unique(index['frame_sequence']):
            rows = np.flatnonzero(index['frame_sequence'] == seq)
            order = np.argsort(index['frame_index'][rows])
            self.frame_rows[int(seq)] = (index['frame_index'][rows][order], rows[order])
        self.background_crops = {}    # sequence -> background crop rows
        for crop in np.flatnonzero(index['search_background']):
            seq = int(index['frame_sequence'][index['search_frame'][crop]])
            self.background_crops.setdefault(seq, []).append(crop)
        self.sequences = np.array(sorted(self.frame_rows))

    def set_epoch(self, epoch):
        self._epoch = int(epoch)

    def __len__(self):
        return self.samples_per_epoch

    def generator(self, index):
        """The ``numpy.random.Generator`` of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self._epoch, int(index)])

    def template_rows(self, sequence, frame, rng, count=2):
        """``count`` frame rows of ``sequence`` whose frame is within ``max_gap`` of ``frame`` (uniform, with
        replacement); the nearest row if none is."""
        ids, rows = self.frame_rows[int(sequence)]
        near = rows[np.abs(ids - frame) <= self.max_gap]
        if not len(near):
            near = rows[[int(np.argmin(np.abs(ids - frame)))]]
        return near[rng.integers(0, len(near), size=count)]

    def __getitem__(self, index):
        rng = self.generator(index)
        idx = self.cache.index
        if rng.random() < self.negative_ratio:
            crop, template_sequence, frame = self._negative(rng)
            box, label = np.zeros(4), 0.0
        else:
            crop = int(self.labelled_crops[rng.integers(0, len(self.labelled_crops))])
            start, stop = self.object_start[crop], self.object_start[crop + 1]
            objects = np.arange(start, stop)
            own = objects[~idx['object_pasted'][objects]]
            if len(own) and (len(own) == len(objects) or rng.random() < self.own_target_probability):
                chosen = int(own[0])
            else:
                pasted = objects[idx['object_pasted'][objects]]
                chosen = int(pasted[rng.integers(0, len(pasted))])
            template_sequence, frame = idx['object_sequence'][chosen], idx['object_frame'][chosen]
            box, label = idx['object_box'][chosen], 1.0
        rows = self.template_rows(template_sequence, frame, rng)
        variants = np.concatenate([[0], rng.integers(0, self.cache.templates.shape[1], size=len(rows) - 1)])
        return {
            'template_feats': torch.from_numpy(np.stack([self.cache.templates[r, v] for r, v in zip(rows, variants)])),
            'template_masks': torch.from_numpy(np.stack([self.cache.template_masks[r, v]
                                                         for r, v in zip(rows, variants)])),
            'search_feat': torch.from_numpy(np.array(self.cache.search[crop])),
            'search_mask': torch.from_numpy(np.array(self.cache.search_masks[crop])),
            'search_box': torch.tensor(box, dtype=torch.float32),
            'label': torch.tensor(label, dtype=torch.float32),
        }

    def _negative(self, rng):
        """``(crop, template sequence, template frame)`` of a negative (class docstring)."""
        idx = self.cache.index
        if self.background_crops and rng.random() < self.background_negative_probability:
            sequences = sorted(self.background_crops)
            sequence = sequences[rng.integers(0, len(sequences))]
            crop = int(self.background_crops[sequence][rng.integers(0, len(self.background_crops[sequence]))])
            return crop, sequence, int(idx['frame_index'][idx['search_frame'][crop]])
        while True:
            crop = int(rng.integers(0, len(idx['search_frame'])))
            present = set(idx['object_sequence'][self.object_start[crop]:self.object_start[crop + 1]].tolist())
            absent = [s for s in self.sequences if s not in present]
            if absent:
                sequence = int(absent[rng.integers(0, len(absent))])
                ids = self.frame_rows[sequence][0]
                return crop, sequence, int(ids[rng.integers(0, len(ids))])
