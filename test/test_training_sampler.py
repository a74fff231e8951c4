"""The training sampler on real frames (bikes.mp4): frame rules, visibility, stage-2 negatives, determinism across
DataLoader workers and epochs, fail-fast errors. Rules: STARK_FACTS.md sections 12 and 12b."""
import os
import time

import numpy as np
import pytest
import torch

from stark_ros.datasets.base import MissingFrameError
from stark_ros.training.augmentation import Augmentation
from stark_ros.training.sampler import SamplingError, TrainingSampler
from training_frames import ListDataset, decode_frames, moving_boxes, sequence, write_frames

SMALL = dict(template_size=64, search_size=128)  # small crops keep the tests fast; the rules do not depend on S
N = 24


@pytest.fixture(scope='module')
def paths(tmp_path_factory):
    return write_frames(str(tmp_path_factory.mktemp('bikes')), decode_frames(N))


@pytest.fixture(scope='module')
def video(paths):
    return ListDataset([sequence('a', paths, moving_boxes(N)),
                        sequence('b', paths[::-1], moving_boxes(N, x0=300, size=(60.0, 60.0)))], name='videos')


def synthetic_sequence(visible, name='v'):
    """A sequence of ``len(visible)`` frame slots (paths never read) for the frame-choice rules."""
    n = len(visible)
    return sequence(name, ['/nonexistent/%05d.jpg' % i for i in range(n)], moving_boxes(n), visible)


def test_contract_causal_and_trident(video):
    for mode, templates in (('causal', 1), ('trident', 2)):
        sampler = TrainingSampler([video], samples_per_epoch=4, mode=mode)
        sample = sampler[0]
        assert set(sample) == {'template_images', 'template_masks', 'search_image', 'search_mask', 'search_box',
                               'label'}
        assert sample['template_images'].shape == (templates, 3, 128, 128)
        assert sample['template_images'].dtype == torch.float32
        assert sample['template_masks'].shape == (templates, 128, 128)
        assert sample['template_masks'].dtype == torch.bool
        assert sample['search_image'].shape == (3, 320, 320) and sample['search_image'].dtype == torch.float32
        assert sample['search_mask'].shape == (320, 320) and sample['search_mask'].dtype == torch.bool
        assert sample['search_box'].shape == (4,) and sample['search_box'].dtype == torch.float32
        assert sample['label'].shape == () and sample['label'].item() == 1.0
        batch = next(iter(torch.utils.data.DataLoader(sampler, batch_size=2)))
        assert batch['template_images'].shape == (2, templates, 3, 128, 128) and batch['label'].shape == (2,)


def test_causal_search_follows_the_template_within_the_gap_and_the_gap_grows():
    visible = np.zeros(320, bool)
    visible[:5] = True
    visible[300:311] = True  # frames 5..299 invisible: after t0 = 4 the gap grows 200 -> 300 -> 305
    sampler = TrainingSampler([ListDataset([synthetic_sequence(visible)])], mode='causal')
    seq = synthetic_sequence(visible)
    rng = np.random.default_rng(0)
    seen_growth = False
    for _ in range(2000):
        (t0,), search = sampler.frame_ids(seq, rng)
        assert visible[t0] and visible[search] and search > t0
        if t0 == 4:
            assert 300 <= search < 304  # end = t0 + 200 + 5 k with the smallest k that holds frame 300
            seen_growth = True
        else:
            assert search < t0 + 200
    assert seen_growth


def test_trident_dynamic_template_range_and_invisible_frames_allowed():
    rng = np.random.default_rng(1)
    visible = rng.random(600) < 0.7
    sampler = TrainingSampler([ListDataset([synthetic_sequence(visible)])], mode='trident')
    seq = synthetic_sequence(visible)
    invisible_dynamic = 0
    for _ in range(3000):
        (t0, dynamic), search = sampler.frame_ids(seq, rng)
        assert visible[t0] and visible[search]
        if t0 >= search:
            assert search <= dynamic < search + 200
        else:
            assert search - 200 <= dynamic < search
        invisible_dynamic += not visible[dynamic]
    assert 0.2 < invisible_dynamic / 3000 < 0.4


def test_frames_flagged_visible_with_empty_or_unknown_boxes_count_as_invisible():
    seq = synthetic_sequence(np.ones(60, bool))
    seq.boxes[10:30, 2] = 0.0
    seq.boxes[40:50] = np.nan
    rng = np.random.default_rng(2)
    for mode in ('causal', 'trident'):
        sampler = TrainingSampler([ListDataset([seq])], mode=mode)
        for _ in range(500):
            templates, search = sampler.frame_ids(seq, rng)
            for frame_id in (templates[0], search):
                assert not (10 <= frame_id < 30 or 40 <= frame_id < 50), (mode, frame_id)


def test_only_sequences_with_enough_visible_frames_are_used(paths, tmp_path):
    # causal: > 2 * (1 + 1) = 4 visible frames and >= 20 frames. The unusable sequences' frames do not exist on
    # disk, so reading any of them would raise MissingFrameError.
    missing = [str(tmp_path / ('gone%02d.jpg' % i)) for i in range(N)]
    few = np.zeros(N, bool)
    few[:4] = True
    enough = np.zeros(N, bool)
    enough[:5] = True
    dataset = ListDataset([sequence('few', missing, moving_boxes(N), few),
                           sequence('short', missing[:19], moving_boxes(19)),
                           sequence('enough', paths, moving_boxes(N), enough)])
    sampler = TrainingSampler([dataset], samples_per_epoch=10, mode='causal', **SMALL)
    drawn = {sampler._random_sequence(0, np.random.default_rng(i)).name for i in range(30)}
    assert drawn == {'few', 'short', 'enough'}  # all are drawn, but only 'enough' is read:
    for i in range(10):
        assert sampler[i]['label'] == 1.0
    trident = TrainingSampler([dataset], samples_per_epoch=10, mode='trident', **SMALL)
    with pytest.raises(SamplingError, match='too few'):  # trident needs > 2 * (1 + 2) = 6 visible frames
        trident[0]
    unusable = ListDataset([sequence('few', missing, moving_boxes(N), few)], name='sparse')
    sampler = TrainingSampler([unusable], samples_per_epoch=1, mode='causal', max_attempts=7, **SMALL)
    started = time.monotonic()
    with pytest.raises(SamplingError, match=r'7 x sparse: sequence with too few \(visible\) frames'):
        sampler[0]
    assert time.monotonic() - started < 5


def test_image_dataset_uses_one_image_for_every_frame(paths):
    images = ListDataset([sequence('img%d' % i, [p], moving_boxes(1, x0=150 + 20 * i)) for i, p in
                          enumerate(paths[:5])], name='stills', is_video=False)
    plain = Augmentation(grayscale_probability=0.0, joint_flip_probability=0.0, brightness_jitter=0.0,
                         crop_flip_probability=0.0)
    sampler = TrainingSampler([images], samples_per_epoch=4, mode='trident', augmentation=plain, **SMALL)
    for i in range(4):
        sample = sampler[i]
        # no template jitter, no augmentation: both templates are the same crop of the same image
        assert torch.equal(sample['template_images'][0], sample['template_images'][1])


def test_stage2_positives_negatives_and_negative_boxes(paths):
    visible = np.ones(N, bool)
    visible[::3] = False  # invisible frames exist: negatives are frames of the same video with the centred box
    square = ListDataset([sequence('sq', paths, moving_boxes(N, size=(60.0, 60.0)), visible)])
    sampler = TrainingSampler([square], samples_per_epoch=200, mode='trident', stage=2, **SMALL)
    labels = []
    for i in range(200):
        sample = sampler[i]
        labels.append(sample['label'].item())
        w, h = sample['search_box'][2:].tolist()
        # positives: the 60x60 target; negatives: the centred W/8 x H/8 = 80 x 34 box of the frame
        np.testing.assert_allclose(w / h, 1.0 if labels[-1] else 640 / 272, rtol=1e-4)
    assert set(labels) == {0.0, 1.0} and 0.4 < np.mean(labels) < 0.6
    stage1 = TrainingSampler([square], samples_per_epoch=20, mode='trident', **SMALL)
    assert all(stage1[i]['label'].item() == 1.0 for i in range(20))


def test_stage2_negative_from_another_sequence_without_invisible_frames(paths):
    squares = ListDataset([sequence('sq', paths, moving_boxes(N, size=(60.0, 60.0)))], name='squares')
    wide = ListDataset([sequence('wide', paths[::-1], moving_boxes(N, size=(90.0, 30.0)))], name='wide')
    sampler = TrainingSampler([squares, wide], ratios=[1, 0], samples_per_epoch=60, mode='trident', stage=2,
                              **SMALL)
    for i in range(60):
        sample = sampler[i]
        w, h = sample['search_box'][2:].tolist()
        assert abs(w / h - 1.0) < 1e-4  # ratio 0: 'wide' is never drawn, negatives come from 'sq' frames


def test_datasets_mixed_by_ratio(paths):
    squares = ListDataset([sequence('sq', paths, moving_boxes(N, size=(60.0, 60.0)))], name='squares')
    wide = ListDataset([sequence('wide', paths[::-1], moving_boxes(N, size=(90.0, 30.0)))], name='wide')
    sampler = TrainingSampler([squares, wide], ratios=[3, 1], samples_per_epoch=300, mode='causal', **SMALL)
    aspects = np.array([(lambda b: b[2] / b[3])(sampler[i]['search_box'].tolist()) for i in range(300)])
    assert np.all(np.isclose(aspects, 1.0, rtol=1e-4) | np.isclose(aspects, 3.0, rtol=1e-4))
    assert 0.69 < np.isclose(aspects, 1.0, rtol=1e-4).mean() < 0.81  # 3:1 -> 0.75 (binomial sd 0.025)


def test_deterministic_across_workers_and_epochs(video):
    sampler = TrainingSampler([video], samples_per_epoch=6, mode='trident', stage=2, **SMALL)

    def epoch(workers):
        loader = torch.utils.data.DataLoader(sampler, batch_size=3, num_workers=workers)
        return [b for b in loader]

    sampler.set_epoch(3)
    single = epoch(0)
    multi = epoch(2)
    for a, b in zip(single, multi):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    sampler.set_epoch(4)
    other = epoch(0)
    assert not torch.equal(single[0]['search_image'], other[0]['search_image'])
    sampler.set_epoch(3)
    assert torch.equal(sampler[4]['search_image'], single[1]['search_image'][1])
    # the same index in another sampler instance (another process) is the same sample
    again = TrainingSampler([video], samples_per_epoch=6, mode='trident', stage=2, **SMALL)
    again.set_epoch(3)
    assert torch.equal(again[2]['template_images'], single[0]['template_images'][2])
    assert not torch.equal(single[0]['search_image'][0], single[0]['search_image'][1])


def test_persistent_workers_follow_set_epoch(video):
    sampler = TrainingSampler([video], samples_per_epoch=4, mode='causal', **SMALL)
    loader = torch.utils.data.DataLoader(sampler, batch_size=4, num_workers=1, persistent_workers=True)
    sampler.set_epoch(1)
    first = next(iter(loader))
    sampler.set_epoch(2)
    second = next(iter(loader))  # the same worker process, started in epoch 1
    assert sampler.epoch == 2
    assert torch.equal(second['search_image'], torch.stack([sampler[i]['search_image'] for i in range(4)]))
    assert not torch.equal(first['search_image'], second['search_image'])


def test_missing_frame_fails_fast_naming_the_file(paths, tmp_path):
    folder = tmp_path / 'seq'
    copies = write_frames(str(folder), decode_frames(N))
    os.remove(copies[7])
    dataset = ListDataset([sequence('broken', copies, moving_boxes(N))])
    sampler = TrainingSampler([dataset], samples_per_epoch=50, mode='causal', **SMALL)
    started = time.monotonic()
    loader = torch.utils.data.DataLoader(sampler, batch_size=2, num_workers=1)
    with pytest.raises(MissingFrameError, match=r'%s does not exist' % copies[7]):
        for _ in loader:
            pass
    assert time.monotonic() - started < 15


def test_bad_arguments():
    dataset = ListDataset([synthetic_sequence(np.ones(30, bool))])
    for kwargs in (dict(mode='random'), dict(stage=3), dict(ratios=[1, 2]), dict(ratios=[0]),
                   dict(samples_per_epoch=0), dict(template_size=100)):
        with pytest.raises(ValueError):
            TrainingSampler([dataset], **kwargs)
    with pytest.raises(ValueError, match='no sequence'):
        TrainingSampler([ListDataset([])])
    with pytest.raises(IndexError):
        TrainingSampler([dataset], samples_per_epoch=3)[3]
