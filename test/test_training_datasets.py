"""Training datasets from config entries, on small folders in each real layout (real frames of ../shared/eval via
dataset_layouts; nothing is trained on them here), and the sampler reading them through the real readers."""
import json
import os
import time

import pytest
import torch

from stark_ros.datasets.base import DatasetError
from stark_ros.training.data import build_training_datasets
from stark_ros.training.sampler import TrainingSampler
from dataset_layouts import write_folder, write_got10k, write_lasot, write_otb, write_trackingnet

COUNT = 24  # >= 20 frames: usable videos for training
GOT_NAMES = ['GOT-10k_Train_%06d' % i for i in (1, 2, 3)]


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('training_datasets')
    got = str(base / 'got10k' / 'train')
    for name, source in zip(GOT_NAMES, ('crossing', 'david', 'human7')):
        write_got10k(got, name, source=source, count=COUNT)
    with open(os.path.join(got, 'got10k_vot_train_split.txt'), 'w') as handle:
        handle.write('0\n2\n')
    write_lasot(str(base / 'lasot'), 'airplane-1', count=COUNT)  # a test sequence: not for training
    write_lasot(str(base / 'lasot'), 'airplane-2', source='jogging1', count=COUNT)
    write_trackingnet(str(base / 'trackingnet'), 'video_a', chunk='TRAIN_0', count=COUNT)
    write_trackingnet(str(base / 'trackingnet'), 'video_b', chunk='TRAIN_1', count=COUNT)
    write_otb(str(base / 'mine'), 'crossing', count=COUNT)
    frames, _ = write_folder(str(base / 'plain'), 'walker', count=COUNT)
    coco = base / 'coco'
    os.makedirs(coco / 'annotations')
    frames, _ = write_folder(str(coco), 'train2017', source='surfer', count=2)
    (coco / 'annotations' / 'instances_train2017.json').write_text(json.dumps(
        {'images': [{'id': i, 'file_name': os.path.basename(f)} for i, f in enumerate(frames)],
         'annotations': [{'id': 5, 'image_id': 1, 'bbox': [200, 50, 60, 70], 'iscrowd': 0}]}))
    (base / 'own.json').write_text(json.dumps(
        {'images': [{'id': 1, 'file_name': 'walker/' + os.path.basename(frames[0])}],
         'annotations': [{'id': 1, 'image_id': 1, 'bbox': [100, 50, 40, 80]}]}))
    return base


def test_every_type_builds_its_reader(roots):
    b = str(roots)
    datasets, ratios = build_training_datasets([
        {'type': 'got10k', 'root': b + '/got10k/train', 'ratio': 2},
        {'type': 'got10k', 'root': b + '/got10k/train', 'split': 'vottrain'},
        {'type': 'got10k', 'root': b + '/got10k/train', 'split': b + '/got10k/train/got10k_vot_train_split.txt'},
        {'type': 'lasot', 'root': b + '/lasot'},
        {'type': 'lasot', 'root': b + '/lasot', 'split': 'all'},
        {'type': 'trackingnet', 'root': b + '/trackingnet', 'chunks': [1]},
        {'type': 'trackingnet', 'root': b + '/trackingnet'},
        {'type': 'coco', 'root': b + '/coco', 'ratio': 0.5},
        {'type': 'sequences', 'root': b + '/mine'},
        {'type': 'sequences', 'root': b + '/plain'},
        {'type': 'images', 'root': b + '/plain', 'annotations': b + '/own.json'}])
    names = [list(d.sequence_names()) for d in datasets]
    assert names[0] == GOT_NAMES and names[1] == names[2] == [GOT_NAMES[0], GOT_NAMES[2]]
    assert names[3] == ['airplane-2'] and sorted(names[4]) == ['airplane-1', 'airplane-2']
    assert names[5] == ['video_b'] and names[6] == ['video_a', 'video_b']
    assert names[7] == ['5'] and names[8] == ['crossing'] and names[9] == ['walker'] and names[10] == ['1']
    assert [d.is_video for d in datasets] == [True] * 7 + [False, True, True, False]
    assert ratios == [2.0] + [1.0] * 6 + [0.5, 1.0, 1.0, 1.0]
    got = datasets[1].load_sequence(GOT_NAMES[2])
    assert got.visible.sum() == COUNT - 2 and len(got) == COUNT  # absence.label: frames 3, 4 absent

    sampler = TrainingSampler(datasets, ratios, samples_per_epoch=12, mode='trident', stage=2, template_size=64,
                              search_size=128)
    for i in range(12):
        sample = sampler[i]
        assert sample['template_images'].shape == (2, 3, 64, 64) and torch.isfinite(sample['search_box']).all()


@pytest.mark.parametrize('entry, message', [
    ({'type': 'imagenet', 'root': '.'}, "unknown type 'imagenet'"),
    ({'root': '.'}, 'needs a "type"'),
    ({'type': 'got10k', 'root': '/no/such/folder'}, "root folder '/no/such/folder' does not exist"),
    ({'type': 'got10k'}, 'root folder None does not exist'),
    ({'type': 'coco', 'root': '.', 'chunks': [1]}, r'unknown option\(s\) chunks'),
    ({'type': 'lasot', 'root': '.', 'ratio': -1}, 'ratio must be a number >= 0'),
])
def test_bad_entries(entry, message):
    with pytest.raises(DatasetError, match=message):
        build_training_datasets([entry])


def test_split_errors(roots, tmp_path):
    got = str(roots / 'got10k' / 'train')
    with pytest.raises(DatasetError, match=r"split 'votval' needs its index file.*got10k_vot_val_split.txt"):
        build_training_datasets([{'type': 'got10k', 'root': got, 'split': 'votval'}])
    bad = tmp_path / 'split.txt'
    bad.write_text('1\n7\n')
    with pytest.raises(DatasetError, match=r'split.txt entry 2: index 7, but the got10k dataset has 3 sequences'):
        build_training_datasets([{'type': 'got10k', 'root': got, 'split': str(bad)}])
    bad.write_text('GOT-10k_Train_000002\nGOT-10k_Train_000009\n')
    with pytest.raises(DatasetError, match='not in the got10k dataset .first: GOT-10k_Train_000009'):
        build_training_datasets([{'type': 'got10k', 'root': got, 'split': str(bad)}])
    with pytest.raises(DatasetError, match='needs "annotations"'):
        build_training_datasets([{'type': 'images', 'root': got}])


def test_malformed_annotation_fails_fast_naming_the_file(roots, tmp_path):
    got = tmp_path / 'train'
    write_got10k(str(got), GOT_NAMES[0], count=COUNT)
    annotation = got / GOT_NAMES[0] / 'groundtruth.txt'
    lines = annotation.read_text().splitlines()
    lines[5] = '12.0,abc,30,40'
    annotation.write_text('\n'.join(lines) + '\n')
    datasets, ratios = build_training_datasets([{'type': 'got10k', 'root': str(got)}])
    sampler = TrainingSampler(datasets, ratios, samples_per_epoch=4)
    started = time.monotonic()
    with pytest.raises(DatasetError, match=r'%s line 6: not a number' % annotation):
        sampler[0]
    assert time.monotonic() - started < 5
