"""The main job (``python -m stark_ros.demo``) on the bundled real video, through real DDS."""
import csv
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from oracles import REPO_ROOT


#: The rabbit of bigbuckbunny.mp4 (the demo's default video) labelled by hand on a 100-px grid: frame -> x, y, w, h
#: (pixels; head, ears and body, without the stretched-out arms). The demo starts from DEFAULT_INIT_BOX on frame 0.
RABBIT = {30: (250, 170, 390, 425), 60: (320, 60, 290, 560), 90: (330, 75, 285, 550)}
FRAMES, WIDTH, HEIGHT = 132, 1280, 720


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """The main job exactly as scripts/setup.sh runs it: the default video, box and (shipped) model."""
    out = tmp_path_factory.mktemp('demo')
    run = subprocess.run([sys.executable, '-m', 'stark_ros.demo', '--output-dir', str(out)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    return run, out


def _summary(stdout):
    values = {}
    for line in stdout.splitlines():
        if line.startswith('frames '):
            key, _, rest = line.partition(':')
            values[key] = int(rest.split()[0])
            if key == 'frames dropped':   # "N (A skipped while the tracker was busy, B lost before delivery)"
                words = rest.replace('(', ' ').split()
                values['skipped'], values['lost'] = int(words[1]), int(words[words.index('lost') - 1])
    return values


def test_demo_tracks_the_bundled_video_over_dds(demo_run):
    run, out = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'SYNTHETIC' not in run.stdout + run.stderr
    numbers = _summary(run.stdout)
    assert numbers['frames played'] == FRAMES
    assert numbers['frames processed'] >= 1
    # The node's own counters (frames it skipped while busy, frames lost before delivery) account for every
    # played frame that got no detection; only trailing losses are invisible to its gap count.
    accounted = numbers['frames processed'] + numbers['skipped'] + numbers['lost']
    assert numbers['frames played'] - 1 - 3 <= accounted <= numbers['frames played'] - 1, numbers
    assert 'latency image stamp -> detection: mean' in run.stdout
    # the node's default backend 'auto' on this x86 CPU, where requirements.txt installs openvino
    assert 'tracker: STARK lite0 on backend openvino (auto), fp32' in run.stdout, run.stdout
    assert 'inside the node, p50 / p95: delivery' in run.stdout
    with open(out / 'detections.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == numbers['frames processed']
    frames = [int(r['frame']) for r in rows]
    assert frames == sorted(set(frames)) and 1 <= frames[0] and frames[-1] <= FRAMES - 1
    for row in rows:
        x, y, w, h = (float(row[k]) for k in 'xywh')
        assert 0 <= x and 0 <= y and w >= 10 and h >= 10 and x + w <= WIDTH + 1e-6 and y + h <= HEIGHT + 1e-6
        assert 0 <= float(row['score']) <= 1 and float(row['latency_ms']) > 0


def test_demo_follows_the_rabbit_while_it_crouches(demo_run):
    """The shipped model holds the demo's target while the rabbit crouches: over the processed frames 24-30 (the
    node skips frames while busy, so which ones varies) the box centre lies on the hand-labelled rabbit of frame
    30 in at least half of them and the median IoU with it is >= 0.2 (five runs, 2026-12-06: median 0.33-0.45,
    centre on the rabbit in 67-86 % of the frames; single frames go as low as 0.08, so none is checked alone). It loses
    the rabbit when it stands up (frames 50-60, box on the burrow at the left; README, Demo), so frames 60 and 90
    are not checked: this clip is not in the model's training data."""
    rect_iou = pytest.importorskip('got10k.utils.metrics').rect_iou   # the toolkit's IoU (pip test requirement)
    run, out = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    with open(out / 'detections.csv') as f:
        boxes = {int(r['frame']): tuple(float(r[k]) for k in 'xywh') for r in csv.DictReader(f)}
    label = RABBIT[30]
    near = sorted(f for f in boxes if 24 <= f <= 30)
    assert len(near) >= 3, 'only frames %s of 24-30 were processed' % near
    found = np.array([boxes[f] for f in near])
    cx, cy = found[:, 0] + found[:, 2] / 2, found[:, 1] + found[:, 3] / 2
    inside = (label[0] <= cx) & (cx <= label[0] + label[2]) & (label[1] <= cy) & (cy <= label[1] + label[3])
    ious = rect_iou(found, np.repeat(np.array([label], dtype=float), len(found), axis=0))
    assert inside.mean() >= 0.5 and np.median(ious) >= 0.2, \
        'frames %s: centre on the rabbit %s, IoU %s' % (near, inside.tolist(), np.round(ious, 2).tolist())


def test_demo_reports_the_target_state_of_every_detection(demo_run):
    """Every detection row carries the target's status from ``status`` (state, frames since the last confident
    frame, search area factor, search region around the box's previous position), and the printed counts of
    frames per state add up to the processed frames."""
    run, out = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    with open(out / 'detections.csv') as f:
        rows = list(csv.DictReader(f))
    states = [r['state'] for r in rows]
    assert set(states) <= {'tracking', 'uncertain', 'lost'}, 'a detection without its status: %s' % set(states)
    counts = {s: states.count(s) for s in ('tracking', 'uncertain', 'lost')}
    assert 'target states:    tracking %(tracking)d, uncertain %(uncertain)d, lost %(lost)d' % counts in run.stdout
    for row in rows:
        side = float(row['search_w'])
        assert side == float(row['search_h']) and side > max(float(row['w']), float(row['h']))
        assert float(row['search_factor']) >= 1.0 and int(row['frames_since_confident']) >= 0
        if row['state'] == 'tracking':          # tracking means a confident frame lately (hysteresis in frames)
            assert int(row['frames_since_confident']) < 5


def _vertical_edges(bgr, box):
    """Pixels of the left and right sides of a drawn box (inside the image), away from the corners and label."""
    x, y, w, h = box
    height, width = bgr.shape[:2]
    ys = np.arange(max(0, round(y) + 3), min(height, round(y + h) - 2))
    cols = [c for c in (round(x), round(x + w)) if 0 <= c < width]
    return np.concatenate([bgr[ys, c] for c in cols]).astype(int)


def test_demo_writes_an_annotated_video_with_the_states(demo_run):
    """annotated.mp4 has every played frame; on each processed frame the box is drawn in its state's colour
    (:data:`stark_ros.ros.debug_image.STATE_COLOURS`, which the node's debug image uses), after MPEG-4 coding."""
    from stark_ros.ros.debug_image import box_colour
    run, out = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    with open(out / 'detections.csv') as f:
        rows = {int(r['frame']): r for r in csv.DictReader(f)}
    capture = cv2.VideoCapture(str(out / 'annotated.mp4'))
    checked = 0
    try:
        assert capture.isOpened()
        count = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            row = rows.get(count)
            if row is not None:
                assert row['state'] in ('tracking', 'uncertain', 'lost'), 'frame %d: no state in the CSV' % count
                edges = _vertical_edges(bgr, tuple(float(row[k]) for k in 'xywh'))
                distance = np.abs(edges - np.array(box_colour(row['state']))).mean(axis=1)
                # most edge pixels: the search region's and the label's lines may cross a side for a few rows
                assert np.median(distance) < 30 and (distance < 60).mean() > 0.8, \
                    'frame %d: box not drawn in the colour of state %s' % (count, row['state'])
                checked += 1
            count += 1
        assert count == FRAMES
        assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == WIDTH
    finally:
        capture.release()
    assert checked == len(rows)


def test_demo_rejects_bad_input(tmp_path):
    run = subprocess.run([sys.executable, '-m', 'stark_ros.demo', '--video', str(tmp_path / 'missing.mp4'),
                          '--init-box', '1,2,3,4', '--output-dir', str(tmp_path)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and 'input not found' in run.stderr and 'Traceback' not in run.stderr
    run = subprocess.run([sys.executable, '-m', 'stark_ros.demo', '--video', str(tmp_path / 'clip.mp4'),
                          '--output-dir', str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and '--init-box x,y,w,h is required' in run.stderr, run.stderr
    run = subprocess.run([sys.executable, '-m', 'stark_ros.demo', '--init-box', '5000,5000,10,10',
                          '--max-frames', '3', '--output-dir', str(tmp_path)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and 'init_target failed' in run.stderr and 'outside' in run.stderr, run.stderr
    assert not os.path.exists(tmp_path / 'detections.csv')


def test_demo_says_when_it_runs_synthetic_weights(tmp_path):
    run = subprocess.run([sys.executable, '-m', 'stark_ros.demo', '--checkpoint', 'synthetic', '--max-frames', '5',
                          '--backend', 'torch', '--output-dir', str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'SYNTHETIC' in run.stdout and 'NOT meaningful' in run.stdout
    assert 'tracker: STARK st50 on backend torch, fp32' in run.stdout, run.stdout     # --backend reaches the node
    assert 'MEANINGLESS' in run.stderr          # the node's own warning


def test_pipeline_stops_when_the_node_process_dies(tmp_path):
    """A node child that exits (here: its checkpoint is missing) ends run_pipeline with its log, at once, instead
    of a 60 s wait for a service that will never come (bench_node.py and the soak use this path)."""
    import time

    from rclpy.parameter import Parameter

    from stark_ros.ros.pipeline import run_pipeline
    missing = str(tmp_path / 'missing.pth.tar')
    frame = np.zeros((48, 64, 3), np.uint8)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match='tracker node process exited with status') as error:
        run_pipeline([frame] * 3, (10, 10, 20, 20), 30.0, [Parameter('checkpoint', value=missing)],
                     node_process=True)
    assert missing in str(error.value)
    assert time.monotonic() - started < 45
