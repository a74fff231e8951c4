"""The COCO reader on small folders in the COCO 2017 layout and in a user's layout, written from real frames."""
import json
import os
import time

import numpy as np
import pytest

from stark_ros.datasets.base import DatasetError, MissingFrameError, read_frame
from stark_ros.datasets.coco import CocoDataset
from stark_ros.training.sampler import TrainingSampler
from training_frames import decode_frames, write_frames

ANNOTATIONS = [
    {'id': 31, 'image_id': 2, 'bbox': [100.5, 40.0, 80.0, 60.0], 'iscrowd': 0, 'category_id': 1, 'area': 4800},
    {'id': 7, 'image_id': 1, 'bbox': [200.0, 90.0, 50.0, 70.0], 'iscrowd': 0, 'category_id': 2},
    {'id': 12, 'image_id': 1, 'bbox': [10.0, 10.0, 300.0, 200.0], 'iscrowd': 1, 'category_id': 1},  # crowd
    {'id': 13, 'image_id': 3, 'bbox': [50.0, 50.0, 0.0, 20.0], 'category_id': 3},  # no iscrowd, empty box
]


def write_json(path, data):
    with open(path, 'w') as handle:
        json.dump(data, handle)
    return str(path)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    write_frames(str(root / 'train2017'), decode_frames(3), pattern='%012d.jpg')
    os.makedirs(root / 'annotations')
    images = [{'id': i, 'file_name': '%012d.jpg' % i, 'width': 640, 'height': 272} for i in (1, 2, 3)]
    write_json(root / 'annotations' / 'instances_train2017.json',
               {'images': images, 'annotations': ANNOTATIONS, 'categories': []})
    return root


def test_coco2017_layout(coco_root):
    dataset = CocoDataset.coco2017(str(coco_root))
    assert dataset.name == 'coco' and not dataset.is_video and len(dataset) == 3
    assert list(dataset.sequence_names()) == ['7', '13', '31']  # crowd annotation 12 dropped
    seq = dataset.load_sequence('31')
    assert seq.frames == (str(coco_root / 'train2017' / '000000000002.jpg'),) and len(seq) == 1
    np.testing.assert_array_equal(seq.boxes, [[100.5, 40.0, 80.0, 60.0]])
    assert seq.visible.tolist() == [True] and seq.dataset == 'coco'
    assert dataset.load_sequence('13').visible.tolist() == [False]  # zero width
    assert read_frame(seq.frames[0]).shape == (272, 640, 3)
    with pytest.raises(KeyError):
        dataset.load_sequence('12')
    with pytest.raises(KeyError):
        dataset.load_sequence('cat')


def test_user_folder_with_subfolders(tmp_path):
    write_frames(str(tmp_path / 'photos' / 'garden'), decode_frames(2), pattern='shot%d.png')
    annotations = write_json(tmp_path / 'boxes.json', {
        'images': [{'id': 'a', 'file_name': 'garden/shot1.png'}, {'id': 'b', 'file_name': 'garden/shot2.png'}],
        'annotations': [{'id': 1, 'image_id': 'b', 'bbox': [1, 2, 30, 40]}]})
    dataset = CocoDataset(str(tmp_path / 'photos'), annotations, name='images')
    seq = dataset.load_sequence(dataset.sequence_names()[0])
    assert seq.frames[0].endswith(os.path.join('garden', 'shot2.png')) and seq.dataset == 'images'
    assert read_frame(seq.frames[0]).shape == (272, 640, 3)


@pytest.mark.parametrize('data, message', [
    ('{"images": [', 'is not valid json'),
    ({'images': []}, 'needs lists "images" and "annotations"'),
    ({'images': [{'id': 1}], 'annotations': []}, 'image entry #0 needs "id" and "file_name"'),
    ({'images': [{'id': 1, 'file_name': 'x.jpg'}], 'annotations': [{'id': 5, 'image_id': 1, 'bbox': [1, 2, 3]}]},
     r'annotation 5 has bbox \[1, 2, 3\]'),
    ({'images': [{'id': 1, 'file_name': 'x.jpg'}], 'annotations': [{'id': 6, 'image_id': 1}]},
     "annotation 6 has no 'bbox'"),
    ({'images': [{'id': 1, 'file_name': 'x.jpg'}], 'annotations': [{'id': 8, 'image_id': 4, 'bbox': [0, 0, 1, 1]}]},
     'annotation 8 refers to image 4'),
    ({'images': [{'id': 1, 'file_name': 'x.jpg'}],
      'annotations': [{'id': 9, 'image_id': 1, 'bbox': [0, 0, 1, 1]}, {'id': 9, 'image_id': 1, 'bbox': [0, 0, 1, 1]}]},
     'annotation 9 needs a unique integer "id"'),
    ({'images': [{'id': 1, 'file_name': 'x.jpg'}], 'annotations': [{'id': 3, 'image_id': 1, 'bbox': [0, 'a', 1, 1]}]},
     'annotation 3 has bbox'),
])
def test_malformed_annotation_names_file_and_annotation(tmp_path, data, message):
    path = tmp_path / 'bad.json'
    if isinstance(data, str):
        path.write_text(data)
    else:
        write_json(path, data)
    with pytest.raises(DatasetError, match=message) as error:
        CocoDataset(str(tmp_path), str(path))
    assert str(path) in str(error.value)


def test_missing_folder_or_json(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        CocoDataset.coco2017(str(tmp_path))
    os.makedirs(tmp_path / 'train2017')
    with pytest.raises(DatasetError, match='instances_train2017.json does not exist'):
        CocoDataset.coco2017(str(tmp_path))


def test_sampler_on_coco_and_missing_image(coco_root, tmp_path):
    dataset = CocoDataset.coco2017(str(coco_root))
    sampler = TrainingSampler([dataset], samples_per_epoch=4, mode='trident', template_size=64, search_size=128)
    assert sampler[0]['template_images'].shape == (2, 3, 64, 64)
    os.makedirs(tmp_path / 'train2017')  # the json of coco_root, but no image files
    os.makedirs(tmp_path / 'annotations')
    with open(coco_root / 'annotations' / 'instances_train2017.json') as handle:
        write_json(tmp_path / 'annotations' / 'instances_train2017.json', json.load(handle))
    sampler = TrainingSampler([CocoDataset.coco2017(str(tmp_path))], samples_per_epoch=4, mode='causal')
    started = time.monotonic()
    with pytest.raises(MissingFrameError, match=str(tmp_path / 'train2017') + r'/0000000000\d\d.jpg does not exist'):
        sampler[0]
    assert time.monotonic() - started < 5
