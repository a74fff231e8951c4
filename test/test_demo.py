"""The main job (``python -m stark_ros.demo``) on the bundled real video, through real DDS."""
import csv
import os
import subprocess
import sys

import cv2
import pytest

from oracles import REPO_ROOT


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    run = subprocess.run([sys.executable, '-m', 'stark_ros.demo', '--max-frames', '40', '--output-dir', str(out)],
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
    assert 'SYNTHETIC' in run.stdout and 'NOT meaningful' in run.stdout
    numbers = _summary(run.stdout)
    assert numbers['frames played'] == 40
    assert numbers['frames processed'] >= 1
    # The node's own counters (frames it skipped while busy, frames lost before delivery) account for every
    # played frame that got no detection; only trailing losses are invisible to its gap count.
    accounted = numbers['frames processed'] + numbers['skipped'] + numbers['lost']
    assert numbers['frames played'] - 1 - 3 <= accounted <= numbers['frames played'] - 1, numbers
    assert 'latency image stamp -> detection: mean' in run.stdout
    assert 'inside the node, p50 / p95: delivery' in run.stdout
    with open(out / 'detections.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == numbers['frames processed']
    frames = [int(r['frame']) for r in rows]
    assert frames == sorted(set(frames)) and 1 <= frames[0] and frames[-1] <= 39
    for row in rows:
        x, y, w, h = (float(row[k]) for k in 'xywh')
        assert 0 <= x and 0 <= y and w >= 10 and h >= 10 and x + w <= 640 + 1e-6 and y + h <= 272 + 1e-6
        assert 0 <= float(row['score']) <= 1 and float(row['latency_ms']) > 0


def test_demo_writes_an_annotated_video(demo_run):
    run, out = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    capture = cv2.VideoCapture(str(out / 'annotated.mp4'))
    try:
        assert capture.isOpened()
        count = 0
        while capture.read()[0]:
            count += 1
        assert count == 40
        assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    finally:
        capture.release()


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
