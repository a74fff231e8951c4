"""Dataset readers: each layout read from small folders written from real frames with known boxes."""
import os

import numpy as np
import pytest

from dataset_layouts import (shared_eval, write_folder, write_got10k, write_lasot, write_otb,
                             write_trackingnet, write_vot)
from stark_ros.datasets import (DatasetError, FolderDataset, GOT10kDataset, LaSOTDataset, MissingFrameError,
                                OTBDataset, TrackingNetDataset, VOTDataset, detect_format, open_dataset, read_frame)
from stark_ros.datasets.lasot import TEST_SEQUENCES


def same_files(read, written):
    assert [os.path.realpath(p) for p in read] == [os.path.realpath(p) for p in written]


def test_otb_layout_any_separator(tmp_path):
    written, boxes = write_otb(str(tmp_path), 'crossing', sep='\t')
    write_otb(str(tmp_path), 'david', sep=',')
    dataset = open_dataset(str(tmp_path))
    assert isinstance(dataset, OTBDataset) and dataset.sequence_names() == ['crossing', 'david']
    sequence = dataset.load_sequence('crossing')
    same_files(sequence.frames, written)
    np.testing.assert_array_equal(sequence.boxes, boxes)
    assert sequence.visible.all() and sequence.init_box == tuple(boxes[0])
    assert read_frame(sequence.frames[0]).shape == (240, 360, 3)


def test_otb_two_targets_and_frame_subrange(tmp_path):
    written, boxes = write_otb(str(tmp_path), 'crossing', count=6)
    folder = tmp_path / 'crossing'
    os.replace(folder / 'groundtruth_rect.txt', folder / 'groundtruth_rect.1.txt')
    (folder / 'groundtruth_rect.2.txt').write_text('\n'.join('1 2 3 4' for _ in range(6)) + '\n')
    dataset = OTBDataset(str(tmp_path))
    assert dataset.sequence_names() == ['crossing-1', 'crossing-2']
    np.testing.assert_array_equal(dataset.load_sequence('crossing-2').boxes, np.tile([1, 2, 3, 4.0], (6, 1)))
    # OTB-2015 David: img/ holds 770 frames, the ground truth covers 300..770 (471 lines).
    david = tmp_path / 'david' / 'img'
    david.mkdir(parents=True)
    for i in range(1, 771):
        os.link(written[i % 6], str(david / ('%04d.jpg' % i)))
    (tmp_path / 'david' / 'groundtruth_rect.txt').write_text('5,6,7,8\n' * 471)
    sequence = OTBDataset(str(tmp_path)).load_sequence('david')
    assert len(sequence) == 471 and sequence.frames[0].endswith('0300.jpg') and sequence.frames[-1].endswith('0770.jpg')


def test_vot_polygons_become_bounding_boxes(tmp_path):
    written, boxes = write_vot(str(tmp_path), 'crossing')
    _, rectangles = write_vot(str(tmp_path), 'surfer', polygons=False)
    dataset = open_dataset(str(tmp_path))
    assert isinstance(dataset, VOTDataset) and dataset.sequence_names() == ['crossing', 'surfer']
    sequence = dataset.load_sequence('crossing')
    same_files(sequence.frames, written)
    with open(os.path.join(str(tmp_path), 'crossing', 'groundtruth.txt')) as handle:
        assert len(handle.readline().split(',')) == 8
    np.testing.assert_allclose(sequence.boxes, boxes, atol=1e-9)
    np.testing.assert_array_equal(dataset.load_sequence('surfer').boxes, rectangles)


def test_vot_absent_rows_are_invisible(tmp_path):
    write_vot(str(tmp_path), 'crossing', count=5, polygons=False)
    (tmp_path / 'crossing' / 'groundtruth.txt').write_text('1,2,30,40\nnan,nan,nan,nan\n0,0,0,0\n1,2,3,4\n1,2,3,4\n')
    sequence = VOTDataset(str(tmp_path)).load_sequence('crossing')
    assert sequence.visible.tolist() == [True, False, False, True, True]


def test_got10k_val_and_test_splits(tmp_path):
    val = str(tmp_path / 'val')
    written, boxes, absence, cover = write_got10k(val)
    dataset = open_dataset(val)
    assert isinstance(dataset, GOT10kDataset) and dataset.split == 'val'
    sequence = dataset.load_sequence('GOT-10k_Val_000001')
    same_files(sequence.frames, written)
    np.testing.assert_allclose(sequence.boxes, boxes, atol=1e-4)
    assert sequence.visible.tolist() == (absence == 0).tolist()
    assert sequence.extra['cover'].tolist() == cover.tolist()

    test = str(tmp_path / 'test')
    write_got10k(test, 'GOT-10k_Test_000001', test=True)
    sequence = open_dataset(test).load_sequence('GOT-10k_Test_000001')
    np.testing.assert_allclose(sequence.boxes[0], boxes[0], atol=1e-4)
    assert np.isnan(sequence.boxes[1:]).all() and 'cover' not in sequence.extra
    # The GOT-10k root (splits below it) is not a dataset: the error names the split folders.
    with pytest.raises(DatasetError, match=r'one level down: test: got10k; val: got10k'):
        open_dataset(str(tmp_path))


def test_got10k_list_names_a_missing_sequence(tmp_path):
    write_got10k(str(tmp_path))
    with open(tmp_path / 'list.txt', 'a') as handle:
        handle.write('GOT-10k_Val_000002\n')
    with pytest.raises(DatasetError, match=r'list.txt lists GOT-10k_Val_000002'):
        GOT10kDataset(str(tmp_path))


@pytest.mark.parametrize('nested', [True, False])
def test_lasot_flags_and_splits(tmp_path, nested):
    written, boxes, occlusion, out_of_view = write_lasot(str(tmp_path), 'airplane-1', nested=nested)
    write_lasot(str(tmp_path), 'airplane-2', nested=nested)            # a training sequence
    dataset = open_dataset(str(tmp_path))
    assert isinstance(dataset, LaSOTDataset) and dataset.split == 'all'
    assert dataset.sequence_names() == ['airplane-1', 'airplane-2']
    sequence = dataset.load_sequence('airplane-1')
    same_files(sequence.frames, written)
    np.testing.assert_array_equal(sequence.boxes, boxes)
    assert sequence.extra['full_occlusion'].tolist() == occlusion.tolist()
    assert sequence.extra['out_of_view'].tolist() == out_of_view.tolist()
    assert sequence.visible.tolist() == (~occlusion & ~out_of_view).tolist()
    with pytest.raises(DatasetError, match='279 of the 280 test sequences are missing'):
        LaSOTDataset(str(tmp_path), split='test')


def test_lasot_test_split_list():
    assert len(TEST_SEQUENCES) == 280 == len(set(TEST_SEQUENCES))
    classes = {name.rsplit('-', 1)[0] for name in TEST_SEQUENCES}
    assert len(classes) == 70 and 'airplane-1' in TEST_SEQUENCES and 'airplane-2' not in TEST_SEQUENCES


def test_trackingnet_numeric_frame_order_and_frame0_only(tmp_path):
    written, boxes = write_trackingnet(str(tmp_path), count=12)
    write_trackingnet(str(tmp_path), 'train_video', chunk='TRAIN_0', count=3)
    dataset = open_dataset(str(tmp_path))
    assert isinstance(dataset, TrackingNetDataset) and dataset.chunks == ['TEST']
    sequence = dataset.load_sequence('-3TIfnTSM6c_2')
    same_files(sequence.frames, written)                  # 0, 1, 2, ..., 10, 11 (not 0, 1, 10, 11, 2)
    np.testing.assert_array_equal(sequence.boxes[0], boxes[0])
    assert np.isnan(sequence.boxes[1:]).all()
    train = TrackingNetDataset(str(tmp_path), chunks=['TRAIN_0'])
    np.testing.assert_array_equal(train.load_sequence('train_video').boxes, boxes[:3])
    with pytest.raises(DatasetError, match='TRAIN_5 not found'):
        TrackingNetDataset(str(tmp_path), chunks=['TRAIN_5'])


def test_plain_folder(tmp_path):
    written, boxes = write_folder(str(tmp_path), 'walker', sep=' ')
    dataset = open_dataset(str(tmp_path))
    assert isinstance(dataset, FolderDataset) and dataset.sequence_names() == ['walker']
    sequence = dataset.load_sequence('walker')
    same_files(sequence.frames, written)
    np.testing.assert_array_equal(sequence.boxes, boxes)


def test_several_layouts_in_one_root_is_an_error(tmp_path):
    write_otb(str(tmp_path), 'crossing', count=3)
    write_folder(str(tmp_path), 'walker', count=3)
    with pytest.raises(DatasetError, match=r'several dataset layouts: folder \(walker\); otb \(crossing\)'):
        detect_format(str(tmp_path))
    assert open_dataset(str(tmp_path), 'otb').sequence_names() == ['crossing']


def test_real_eval_folder_is_otb():
    dataset = open_dataset(shared_eval())
    assert dataset.name == 'otb'
    assert {s.name: len(s) for s in dataset} == {'bag': 196, 'crossing': 120, 'david': 471, 'human7': 250,
                                                 'jogging1': 307, 'surfer': 376}


# ------------------------------------------------------------------------------------------ bad input


def test_box_count_differs_from_frames(tmp_path):
    written, _ = write_otb(str(tmp_path), 'crossing', count=5)
    os.remove(written[2])                                  # a missing frame: 4 frames, 5 boxes
    with pytest.raises(DatasetError, match=r'groundtruth_rect.txt has 5 boxes but the sequence has 4 frames'):
        OTBDataset(str(tmp_path)).load_sequence('crossing')


def test_malformed_annotation_names_file_and_line(tmp_path):
    write_folder(str(tmp_path), 'walker', count=4)
    (tmp_path / 'walker' / 'groundtruth.txt').write_text('1 2 3 4\n1 2 3 4\n1 2 x 4\n1 2 3 4\n')
    with pytest.raises(DatasetError, match=r'walker/groundtruth.txt line 3: not a number'):
        FolderDataset(str(tmp_path)).load_sequence('walker')
    (tmp_path / 'walker' / 'groundtruth.txt').write_text('1 2 3 4\n1 2 3\n')
    with pytest.raises(DatasetError, match=r'groundtruth.txt line 2: 3 values where the lines before have 4'):
        FolderDataset(str(tmp_path)).load_sequence('walker')


def test_unreadable_and_missing_frames(tmp_path):
    written, _ = write_folder(str(tmp_path), 'walker', count=3)
    with open(written[1], 'wb') as handle:
        handle.write(b'not a jpeg')
    sequence = FolderDataset(str(tmp_path)).load_sequence('walker')
    assert read_frame(sequence.frames[0]).dtype == np.uint8
    with pytest.raises(MissingFrameError, match='frame_001.jpg cannot be decoded'):
        read_frame(sequence.frames[1])
    os.remove(written[2])
    with pytest.raises(MissingFrameError, match='frame_002.jpg does not exist'):
        read_frame(sequence.frames[2])


def test_no_dataset_and_unknown_names(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        open_dataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no known dataset layout'):
        open_dataset(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='unknown dataset format'):
        open_dataset(str(tmp_path), 'imagenet')
    write_folder(str(tmp_path / 'data'), 'walker', count=2)
    with pytest.raises(KeyError, match='no sequence'):
        open_dataset(str(tmp_path / 'data')).load_sequence('runner')
