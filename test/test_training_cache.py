"""Training on cached backbone features: distractor placement (the formulas of stark_ros.training.distractors), the
cached path computing the same loss as the image path on the same crops, and the pair sampler's labels, on real
frames of ../shared/train_real."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dataset_layouts import shared_train_real
from stark_ros.datasets.detect import open_dataset
from stark_ros.model import build_network
from stark_ros.training.actor import StarkActor, TrainingForward
from stark_ros.training.augmentation import Augmentation
from stark_ros.training.cached_forward import CachedTrainingForward
from stark_ros.training.distractors import (PasteSettings, background_box, box_iou, distractor_size, feather_alpha,
                                            paste, place_distractors)
from stark_ros.training.feature_cache import CacheSettings, build_feature_cache
from stark_ros.training.pair_sampler import CachedPairSampler
from stark_ros.training.pretrained import load_imagenet_backbone
from stark_ros.training.processing import Processing



@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10 ** 6), side=st.floats(8, 120), aspect=st.floats(0.3, 3.0),
       pad=st.integers(0, 200), count=st.integers(1, 4))
def test_distractors_lie_where_the_formulas_say(seed, side, aspect, pad, count):
    rng = np.random.default_rng(seed)
    crop_side, s = 320, PasteSettings()
    mask = np.zeros((crop_side, crop_side), bool)
    mask[:, crop_side - pad:] = True                       # padding on the right
    target = np.array([140.0, 150.0, side / np.sqrt(aspect), side * np.sqrt(aspect)])
    shapes = [(int(rng.integers(10, 90)), int(rng.integers(10, 90))) for _ in range(count)]
    boxes = place_distractors(crop_side, target, shapes, mask, s, rng)
    placed = [b for b in boxes if b is not None]
    for shape, box in zip(shapes, boxes):
        if box is None:
            continue
        assert box[0] >= -1e-9 and box[1] >= -1e-9                           # inside the crop
        assert box[0] + box[2] <= crop_side + 1e-9 and box[1] + box[3] <= crop_side + 1e-9
        assert not mask[int(box[1] + box[3] / 2), int(box[0] + box[2] / 2)]  # centre on image pixels
        assert box_iou(box, target) <= s.max_iou + 1e-12
        assert max(box[2], box[3]) <= s.max_side_fraction * crop_side + 1e-9
        np.testing.assert_allclose(box[3] / box[2], shape[0] / shape[1], rtol=1e-9)   # source aspect kept
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            assert box_iou(a, b) <= s.max_iou + 1e-12


def test_distractor_size_follows_the_target():
    s = PasteSettings(size_sigma=0.0)
    rng = np.random.default_rng(0)
    width, height = distractor_size((60, 30), np.array([0, 0, 40.0, 10.0]), 320, s, rng)
    assert np.sqrt(width * height) == pytest.approx(20.0)             # sqrt(40 * 10), sigma 0
    assert height / width == pytest.approx(2.0)                       # the patch's own h / w
    width, height = distractor_size((60, 30), np.array([0, 0, 400.0, 400.0]), 320, s, rng)
    assert max(width, height) == pytest.approx(0.5 * 320)             # shrunk to half the crop side


def test_paste_blends_inside_the_box_only():
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 255, (320, 320, 3), dtype=np.uint8)
    before = crop.copy()
    patch = np.full((40, 20, 3), 200, np.uint8)
    box = paste(crop, patch, np.array([100.0, 50.0, 30.0, 60.0]), 0.12)
    np.testing.assert_array_equal(box, [100, 50, 30, 60])
    changed = np.argwhere((crop != before).any(axis=2))
    assert changed[:, 0].min() >= 50 and changed[:, 0].max() < 110
    assert changed[:, 1].min() >= 100 and changed[:, 1].max() < 130
    np.testing.assert_array_equal(crop[80, 115], [200, 200, 200])     # alpha 1 at the centre
    alpha = feather_alpha(60, 30, 0.12)
    assert alpha[30, 15] == 1.0 and alpha[0, 0] < 0.1


def test_background_box_keeps_the_target_out_of_the_crop():
    rng = np.random.default_rng(2)
    target = np.array([300.0, 200.0, 40.0, 30.0])
    for _ in range(50):
        box = background_box((480, 640, 3), target, 2.0, rng)
        assert box is not None
        half = np.ceil(np.sqrt(40 * 30) * 2.0) / 2
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        assert cx + half <= 300 or cx - half >= 340 or cy + half <= 200 or cy - half >= 230
    assert background_box((100, 100, 3), np.array([10.0, 10.0, 80.0, 80.0]), 5.0, rng) is None


def _network(score_head=False):
    torch.manual_seed(0)
    network = build_network('lite0', score_head=score_head)
    load_imagenet_backbone(network, None)
    return network.eval()


@pytest.mark.parametrize('cached_blocks', [10, 11])
def test_cached_features_give_the_loss_of_the_image_path(cached_blocks):
    """The same real crops through TrainingForward (images) and CachedTrainingForward (float16 cached prefix)."""
    dataset = open_dataset(shared_train_real())
    processing = Processing(augmentation=Augmentation(grayscale_probability=0.0, joint_flip_probability=0.0,
                                                      brightness_jitter=0.0, crop_flip_probability=0.0))
    samples = []
    for seed, name in enumerate(['Car1', 'Bolt2', 'Dog1', 'Couple']):
        seq = dataset.load_sequence(name)
        from stark_ros.datasets.base import read_frame
        frames = [read_frame(seq.frames[i]) for i in (0, 5, 10)]
        rng = np.random.default_rng(seed)
        sample = None
        while sample is None:
            sample = processing(frames[:2], seq.boxes[:2], frames[2], seq.boxes[10], rng)
        samples.append(sample)
    batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    batch['label'] = torch.ones(len(samples))
    network = _network()
    backbone = network.backbone[0]
    with torch.no_grad():
        t_feats, t_masks = zip(*[backbone.forward_prefix(batch['template_images'][:, i], batch['template_masks'][:, i],
                                                         cached_blocks) for i in range(2)])
        s_feat, s_mask = backbone.forward_prefix(batch['search_image'], batch['search_mask'], cached_blocks)
    cached = {'template_feats': torch.stack(t_feats, 1).half(), 'template_masks': torch.stack(t_masks, 1),
              'search_feat': s_feat.half(), 'search_mask': s_mask, 'search_box': batch['search_box'],
              'label': batch['label']}
    image_actor = StarkActor(TrainingForward(network))
    cached_model = CachedTrainingForward(network, cached_blocks)
    cached_actor = StarkActor(cached_model, input_keys=cached_model.input_keys)
    with torch.no_grad():
        loss_images, terms_images = image_actor(batch)
        loss_cached, terms_cached = cached_actor(cached)
        exact = CachedTrainingForward(network, cached_blocks)(torch.stack(t_feats, 1), torch.stack(t_masks, 1),
                                                              s_feat, s_mask)
        reference = TrainingForward(network)(batch['template_images'], batch['template_masks'],
                                             batch['search_image'], batch['search_mask'])
    # float32 features: the same computation, to rounding
    torch.testing.assert_close(exact['pred_boxes'], reference['pred_boxes'], rtol=0, atol=1e-5)
    # float16 storage: measured < 2e-3 in the loss
    assert abs(float(loss_cached) - float(loss_images)) < 2e-2 * max(1.0, abs(float(loss_images)))
    assert abs(float(terms_cached['iou']) - float(terms_images['iou'])) < 2e-2


@pytest.fixture(scope='module')
def small_cache(tmp_path_factory):
    from stark_ros.datasets.subset import SubsetDataset
    dataset = SubsetDataset(open_dataset(shared_train_real()), ['Car4', 'Bolt2', 'Dog1', 'Couple'])
    sequences = list(dataset)
    network = _network()
    settings = CacheSettings(frame_step=40, search_variants=2, pasted_variants=1, background_variants=1)
    folder = str(tmp_path_factory.mktemp('cache'))
    return build_feature_cache(sequences, network.backbone[0], folder, settings, log=lambda message: None)


def test_cache_labels_own_and_pasted_targets(small_cache):
    index = small_cache.index
    meta = small_cache.meta
    assert meta['frames'] == len(index['frame_sequence']) > 10
    assert small_cache.search.shape[1:] == (112, 20, 20) and small_cache.templates.shape[1:] == (2, 112, 8, 8)
    boxes = index['object_box']
    assert np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()
    pasted = index['object_pasted']
    assert pasted.any() and (~pasted).any()
    # pasted boxes lie inside the crop; own targets are centred near the crop centre (jitter <= 2.25 sides)
    assert (boxes[pasted, :2] >= -1e-6).all() and (boxes[pasted, :2] + boxes[pasted, 2:] <= 1 + 1e-6).all()
    # a pasted object never comes from the crop's own sequence
    own_sequence = index['frame_sequence'][index['search_frame'][index['object_search']]]
    assert (index['object_sequence'][pasted] != own_sequence[pasted]).all()
    # background crops never label their own sequence's target
    background = index['search_background'][index['object_search']]
    assert (index['object_sequence'][background] != own_sequence[background]).all()


def test_pair_sampler_is_deterministic_and_labels_negatives(small_cache):
    sampler = CachedPairSampler(small_cache, 200, stage=2, negative_ratio=0.5, max_gap=400, seed=3)
    sampler.set_epoch(2)
    first, again = sampler[7], sampler[7]
    for key in first:
        torch.testing.assert_close(first[key], again[key])
    labels = np.array([float(sampler[i]['label']) for i in range(200)])
    assert 0.35 < labels.mean() < 0.65
    stage1 = CachedPairSampler(small_cache, 50, stage=1)
    assert all(float(stage1[i]['label']) == 1.0 for i in range(50))
    # a negative's template sequence has no object in its crop
    index = small_cache.index
    for i in range(200):
        rng = sampler.generator(i)
        if rng.random() < sampler.negative_ratio:
            crop, sequence, _ = sampler._negative(rng)
            objects = index['object_sequence'][sampler.object_start[crop]:sampler.object_start[crop + 1]]
            assert sequence not in objects.tolist()
