"""Cached backbone features of training crops: crops are made and run through the frozen backbone prefix once, then
many template/search pairs are formed from the cache at the cost of the trainable rest of the network only.

Layout of a cache folder (all arrays NumPy; features float16, C = channels after ``cached_blocks`` backbone blocks):

* ``templates.npy`` (F, TV, C, ht, wt), ``template_masks.npy`` (F, TV, ht, wt) bool: per frame row, ``TV``
  template crops (variant 0 centred on the ground truth, the others with a small jitter, as a dynamic template
  cropped around an imperfect prediction would be);
* ``search.npy`` (N, C, hs, ws), ``search_masks.npy`` (N, hs, ws) bool: search crops;
* ``index.npz``: ``frame_sequence`` / ``frame_index`` (F,) of each frame row; ``search_frame`` (N,) the frame row a
  search crop was cut from, ``search_background`` (N,) bool (centred away from the target, which is not in it);
  the labelled objects of the search crops as parallel arrays ``object_search`` (M,) crop row,
  ``object_sequence``/``object_frame`` (M,) whose target it is, ``object_box`` (M, 4) ``xywh`` normalised by the
  crop side, ``object_pasted`` (M,) bool;
* ``meta.json``: the settings, the sequence names and lengths, and ``complete``.

Crops follow :class:`~.processing.Processing` (STARK_FACTS.md section 12: jitter, inference crop, ground truth in
the crop with the ``(S - 1)/2`` centre), then :mod:`.distractors` pastes other sequences' targets into some search
crops, then :class:`~.augmentation.Augmentation` (brightness, flip, normalisation). A folder is rebuilt when its
settings key differs; the build is deterministic for a seed.
"""
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..datasets.base import read_frame
from ..errors import InvalidBoxError
from ..tracker.crop import sample_target
from .augmentation import Augmentation, flip_box
from .distractors import DistractorPatch, PasteSettings, background_box, cut_patch, paste, place_distractors
from .processing import box_in_crop, crop_is_usable, jitter_box

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CacheSettings:
    """What a feature cache holds (part of its key).

    Attributes:
        cached_blocks: backbone blocks run at caching time (lite0: 6..11; 11 = the whole backbone is frozen).
        template_size, template_factor: template crop side (pixels) and search area factor.
        search_size, search_factor, search_scale_jitter, search_center_jitter: search crops (facts section 12).
        template_variants: template crops per frame (variant 0 without jitter).
        template_scale_jitter, template_center_jitter: jitter of variants 1.. .
        search_variants: search crops centred on the (jittered) target per frame.
        pasted_variants: how many of them get 1..``max_distractors`` pasted targets of other sequences.
        max_distractors: most pasted targets per crop.
        background_variants: search crops per frame centred away from the target (with pasted targets too).
        frame_step: every k-th frame of a sequence is cached.
        flip_prob, brightness_jitter: per-crop augmentation.
        seed: the build's random seed.
    """

    cached_blocks: int = 10
    template_size: int = 128
    template_factor: float = 2.0
    search_size: int = 320
    search_factor: float = 5.0
    search_scale_jitter: float = 0.5
    search_center_jitter: float = 4.5
    template_variants: int = 2
    template_scale_jitter: float = 0.05
    template_center_jitter: float = 0.25
    search_variants: int = 5
    pasted_variants: int = 3
    max_distractors: int = 3
    background_variants: int = 1
    frame_step: int = 1
    flip_prob: float = 0.5
    brightness_jitter: float = 0.2
    seed: int = 0

    def key(self, sequence_names):
        """Hex digest identifying the settings and the sequences (a cache folder with another key is rebuilt)."""
        text = json.dumps({'v': FORMAT_VERSION, 's': asdict(self), 'n': list(sequence_names)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class FeatureCache:
    """Read access to a complete cache folder (arrays memory-mapped, read-only).

    Attributes:
        templates, template_masks, search, search_masks: the arrays of the module docstring.
        index: dict of the ``index.npz`` arrays; meta: the ``meta.json`` dict.
    Raises:
        FileNotFoundError: the folder holds no complete cache.
    """

    def __init__(self, folder):
        meta_path = os.path.join(folder, 'meta.json')
        if not os.path.isfile(meta_path):
            raise FileNotFoundError('no feature cache in %s (meta.json missing)' % folder)
        with open(meta_path) as stream:
            self.meta = json.load(stream)
        if not self.meta.get('complete'):
            raise FileNotFoundError('the feature cache in %s is incomplete (its build was interrupted)' % folder)
        load = lambda name: np.load(os.path.join(folder, name), mmap_mode='r')  # noqa: E731
        self.templates, self.template_masks = load('templates.npy'), load('template_masks.npy')
        self.search, self.search_masks = load('search.npy'), load('search_masks.npy')
        with np.load(os.path.join(folder, 'index.npz')) as index:
            self.index = {k: index[k] for k in index.files}
        self.folder = folder

    @property
    def sequence_names(self):
        return list(self.meta['sequences'])


def _distractor_bank(sequences, per_sequence, rng):
    """Up to ``per_sequence`` :class:`DistractorPatch` per sequence, cut from evenly spaced visible frames."""
    bank = []
    for seq_id, sequence in enumerate(sequences):
        visible = np.flatnonzero(sequence.visible)
        for frame in visible[np.linspace(0, len(visible) - 1, min(per_sequence, len(visible))).astype(int)]:
            pixels = cut_patch(read_frame(sequence.frames[frame]), sequence.boxes[frame])
            if pixels is not None:
                bank.append(DistractorPatch(pixels, seq_id, int(frame)))
    return bank


def build_feature_cache(sequences, backbone, folder, settings, device='cpu', batch_size=2, log=print,
                        distractors_per_sequence=12):
    """Crop every ``frame_step``-th frame of ``sequences``, run the backbone prefix, write the cache folder.

    Args:
        sequences: list of :class:`~stark_ros.datasets.base.Sequence` (every frame visible, finite boxes; others
            are skipped); distractors come from these sequences only (a validation cache never sees training
            targets and vice versa).
        backbone: the network's :class:`~stark_ros.model.efficientnet.EfficientNetBackbone` (ImageNet weights).
        folder: output folder (created; an existing cache with the same key is reused).
        settings: :class:`CacheSettings`.
        device: torch device for the backbone.
        batch_size: search crops per backbone call (small batches are fastest on a CPU: 27 ms per 320-pixel crop
            at batch 1 against 43 ms at batch 8, 2 threads).
        log: callable(str) for progress lines.
        distractors_per_sequence: patches cut per sequence for pasting.
    Returns:
        :class:`FeatureCache` of the folder.
    Raises:
        MissingFrameError: a frame cannot be read (names the file).
    """
    names = [s.name for s in sequences]
    key = settings.key(names)
    try:
        cache = FeatureCache(folder)
        if cache.meta.get('key') == key:
            return cache
        log('feature cache in %s has another key: rebuilding' % folder)
    except FileNotFoundError:
        pass
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(os.path.join(folder, 'meta.json')):
        os.remove(os.path.join(folder, 'meta.json'))
    rng = np.random.default_rng(settings.seed)
    bank = _distractor_bank(sequences, distractors_per_sequence, rng)
    augmentation = Augmentation(grayscale_probability=0.0, joint_flip_probability=0.0,
                                brightness_jitter=settings.brightness_jitter, crop_flip_probability=settings.flip_prob)
    backbone = backbone.to(device).eval().to(memory_format=torch.channels_last)   # NHWC: 1.5x on a CPU
    frames, search_rows, objects = [], [], []
    template_feats, template_masks, search_feats, search_masks = [], [], [], []
    pending_t, pending_s = [], []
    started = time.perf_counter()

    def flush(pending, feats, masks):
        if not pending:
            return
        images = torch.stack([p[0] for p in pending]).to(device).contiguous(memory_format=torch.channels_last)
        pixel_masks = torch.stack([p[1] for p in pending]).to(device)
        with torch.no_grad():
            features, feature_masks = backbone.forward_prefix(images, pixel_masks, settings.cached_blocks)
        feats.append(features.to(torch.float16).cpu().numpy())
        masks.append(feature_masks.cpu().numpy())
        pending.clear()

    total = sum(len(s) for s in sequences) // settings.frame_step
    for seq_id, sequence in enumerate(sequences):
        for frame_id in range(0, len(sequence), settings.frame_step):
            box = sequence.boxes[frame_id]
            if not (sequence.visible[frame_id] and np.isfinite(box).all() and box[2] > 0 and box[3] > 0):
                continue
            image = read_frame(sequence.frames[frame_id])
            crops = _frame_crops(image, box, seq_id, frame_id, settings, bank, rng)
            if crops is None:
                continue
            templates, searches = crops
            row = len(frames)
            frames.append((seq_id, frame_id))
            for patch, mask, _ in templates:
                image_t, mask_t, _ = augmentation.crop(patch, mask, np.zeros(4), rng)
                pending_t.append((image_t, mask_t))
            for patch, mask, crop_objects, is_background in searches:
                flip = rng.random() < settings.flip_prob
                brightness = rng.uniform(1.0 - settings.brightness_jitter, 1.0 + settings.brightness_jitter)
                image_s, mask_s = _normalise(patch, mask, flip, brightness, augmentation)
                pending_s.append((image_s, mask_s))
                crop_row = len(search_rows)
                search_rows.append((row, is_background))
                for obj_seq, obj_frame, obj_box, pasted in crop_objects:
                    objects.append((crop_row, obj_seq, obj_frame, flip_box(obj_box, 1.0) if flip else obj_box,
                                    pasted))
            if len(pending_s) >= batch_size:
                flush(pending_t, template_feats, template_masks)
                flush(pending_s, search_feats, search_masks)
            if len(frames) % 200 == 0:
                log('feature cache: %d/%d frames, %.0f s' % (len(frames), total, time.perf_counter() - started))
    flush(pending_t, template_feats, template_masks)
    flush(pending_s, search_feats, search_masks)
    variants = settings.template_variants
    t_feats = np.concatenate(template_feats)
    np.save(os.path.join(folder, 'templates.npy'), t_feats.reshape(len(frames), variants, *t_feats.shape[1:]))
    t_masks = np.concatenate(template_masks)
    np.save(os.path.join(folder, 'template_masks.npy'), t_masks.reshape(len(frames), variants, *t_masks.shape[1:]))
    np.save(os.path.join(folder, 'search.npy'), np.concatenate(search_feats))
    np.save(os.path.join(folder, 'search_masks.npy'), np.concatenate(search_masks))
    frames, search_rows = np.array(frames, dtype=np.int64), np.array(search_rows, dtype=np.int64)
    np.savez(os.path.join(folder, 'index.npz'),
             frame_sequence=frames[:, 0], frame_index=frames[:, 1],
             search_frame=search_rows[:, 0], search_background=search_rows[:, 1].astype(bool),
             object_search=np.array([o[0] for o in objects], dtype=np.int64),
             object_sequence=np.array([o[1] for o in objects], dtype=np.int64),
             object_frame=np.array([o[2] for o in objects], dtype=np.int64),
             object_box=np.array([o[3] for o in objects], dtype=np.float64).reshape(-1, 4),
             object_pasted=np.array([o[4] for o in objects], dtype=bool))
    meta = {'key': key, 'complete': True, 'settings': asdict(settings), 'sequences': names,
            'lengths': [len(s) for s in sequences], 'frames': len(frames), 'search_crops': len(search_rows),
            'objects': len(objects), 'build_s': time.perf_counter() - started}
    with open(os.path.join(folder, 'meta.json.tmp'), 'w') as stream:
        json.dump(meta, stream, indent=1)
    os.replace(os.path.join(folder, 'meta.json.tmp'), os.path.join(folder, 'meta.json'))
    log('feature cache: %d frames, %d search crops, %d objects in %.0f s -> %s'
        % (len(frames), len(search_rows), len(objects), meta['build_s'], folder))
    return FeatureCache(folder)


def _normalise(patch, mask, flip, brightness, augmentation):
    """Brightness, optional flip and ImageNet normalisation of one crop (the same arithmetic as
    :meth:`~.augmentation.Augmentation.crop`, with the draws made by the caller)."""
    image = np.clip(patch.astype(np.float32) * np.float32(brightness / 255.0), 0.0, 1.0)
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    image = (image - augmentation.mean) / augmentation.std
    return (torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            torch.from_numpy(np.ascontiguousarray(mask)))


def _crop(image, centre_box, factor, size):
    try:
        crop = sample_target(image, centre_box, factor, size)
    except InvalidBoxError:
        return None
    return crop if crop_is_usable(crop.mask) else None


def _frame_crops(image, box, seq_id, frame_id, s, bank, rng):
    """Template crops and search crops (with their labelled objects) of one frame; None if the template crop is
    unusable. Search crops that are unusable are skipped."""
    templates = []
    for variant in range(s.template_variants):
        jittered = box if variant == 0 else jitter_box(box, s.template_scale_jitter, s.template_center_jitter, rng)
        crop = _crop(image, jittered, s.template_factor, s.template_size)
        if crop is None:
            if variant == 0:
                return None
            crop = _crop(image, box, s.template_factor, s.template_size)
        templates.append((crop.patch, crop.mask, None))
    searches = []
    for variant in range(s.search_variants + s.background_variants):
        background = variant >= s.search_variants
        centre = background_box(image.shape, box, s.search_factor, rng) if background else \
            jitter_box(box, s.search_scale_jitter, s.search_center_jitter, rng)
        if centre is None:
            continue
        crop = _crop(image, centre, s.search_factor, s.search_size)
        if crop is None:
            continue
        patch = crop.patch.copy()
        target = box_in_crop(box, centre, crop.resize_factor, s.search_size)
        objects = [] if background else [(seq_id, frame_id, target, False)]
        if background or variant < s.pasted_variants:
            others = [p for p in bank if p.sequence != seq_id]
            count = int(rng.integers(1, s.max_distractors + 1))
            chosen = [others[i] for i in rng.choice(len(others), size=min(count, len(others)), replace=False)]
            target_px = target * s.search_size
            placed = place_distractors(s.search_size, target_px if not background else np.array([-1e4, -1e4, 1, 1]),
                                       [p.pixels.shape[:2] for p in chosen], crop.mask, PasteSettings(), rng)
            for source, where in zip(chosen, placed):
                if where is None:
                    continue
                pasted = paste(patch, source.pixels, where, PasteSettings().feather)
                objects.append((source.sequence, source.frame, pasted / s.search_size, True))
        searches.append((patch, crop.mask, objects, background))
    return templates, searches
