"""The offline tool ``python -m stark_ros.track`` on the ST50 oracle frames, and its input errors."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from oracles import BOX_TOL_PX, REPO_ROOT, SCORE_TOL, oracle
from stark_ros.io import bundled_video, open_frames, parse_box


def _write_folder(folder, variant):
    """An oracle sequence as a folder of PNGs (lossless) named so that name order = frame order."""
    for index, frame in enumerate(oracle(variant)['frames_bgr']):
        cv2.imwrite(str(folder / ('%05d.png' % index)), frame)
    return folder


@pytest.fixture(scope='module')
def oracle_folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp('frames'), 'st50')


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'stark_ros.track', *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_reproduces_the_oracle(oracle_folder, tmp_path):
    o = oracle('st50')
    results, scores = tmp_path / 'results.txt', tmp_path / 'scores.txt'
    box = ','.join(repr(float(v)) for v in o['init_box'])
    run = _cli('--input', oracle_folder, '--init-box', box, '--update-interval', 10, '--score-threshold', 0.3,
               '--output', results, '--scores', scores, '--quiet', '--checkpoint', 'synthetic', '--backend', 'torch')
    assert run.returncode == 0, run.stderr
    assert 'SYNTHETIC' in run.stderr and 'NOT meaningful' in run.stderr
    boxes = np.loadtxt(results, delimiter=',')
    assert boxes.shape == (40, 4)
    np.testing.assert_array_equal(boxes[0], o['init_box'])
    np.testing.assert_allclose(boxes[1:], o['boxes'][1:], atol=BOX_TOL_PX, rtol=0)
    conf = np.loadtxt(scores)
    assert conf[0] == 1.0
    np.testing.assert_allclose(conf[1:], o['scores'][1:], atol=SCORE_TOL, rtol=0)


def test_cli_without_score_head_writes_nan(tmp_path):
    o = oracle('s50')
    scores = tmp_path / 'scores.txt'
    folder = tmp_path / 'frames'
    folder.mkdir()
    run = _cli('--input', _write_folder(folder, 's50'), '--init-box', ','.join(map(str, o['init_box'])), '--variant', 's50',
               '--checkpoint', 'synthetic', '--max-frames', 4, '--scores', scores, '--quiet')
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4
    np.testing.assert_allclose(np.array([l.split(',') for l in lines[1:]], float), o['boxes'][1:4],
                               atol=BOX_TOL_PX, rtol=0)
    assert scores.read_text().split() == ['1.0', 'nan', 'nan', 'nan']


@pytest.mark.parametrize('args, message', [
    (['--input', '/nonexistent/video.mp4', '--init-box', '1,2,3,4'], 'input not found'),
    (['--init-box', '1,2,3'], 'four numbers'),
    (['--init-box', '1,2,nan,4'], 'four numbers'),
    (['--init-box', '1000,1000,20,20'], 'does not overlap'),
    (['--init-box', '10,10,0,20'], 'empty'),
    (['--init-box', '10,10,20,20', '--checkpoint', '/nonexistent.pth'], 'checkpoint file not found'),
    (['--init-box', '10,10,20,20', '--variant', 'st18'], 'unknown STARK variant'),
    (['--init-box', '10,10,20,20', '--output', '/nonexistent/dir/results.txt'], 'No such file'),
])
def test_cli_user_errors(oracle_folder, tmp_path, args, message):
    if '--input' not in args:
        args = ['--input', oracle_folder] + args
    if '--output' not in args:
        args = args + ['--output', tmp_path / 'results.txt']
    run = _cli(*args, '--quiet')
    assert run.returncode == 2
    assert message in run.stderr and 'Traceback' not in run.stderr
    assert not (tmp_path / 'results.txt').exists()      # a rejected run leaves no half-written results


def test_folder_order_and_errors(tmp_path):
    for name, value in (('b.png', 2), ('a.png', 1), ('c.jpg', 3)):
        cv2.imwrite(str(tmp_path / name), np.full((4, 6, 3), value * 40, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    firsts = [int(f[0, 0, 0]) for f in open_frames(str(tmp_path))]
    assert firsts[:2] == [40, 80] and abs(firsts[2] - 120) <= 2          # a, b, c (jpg is lossy)
    (tmp_path / 'd.png').write_bytes(b'broken')
    with pytest.raises(ValueError, match='cannot decode'):
        list(open_frames(str(tmp_path)))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no image files'):
        open_frames(str(empty))
    with pytest.raises(ValueError, match='cannot open'):
        open_frames(str(tmp_path / 'notes.txt'))


def test_video_reading(tmp_path):
    path = str(tmp_path / 'tiny.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 12.0, (64, 48))
    for value in range(0, 250, 50):
        writer.write(np.full((48, 64, 3), (value, 0, 255 - value), np.uint8))   # BGR
    writer.release()
    source = open_frames(path)
    assert source.fps == 12.0
    frames = list(source)
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert frames[0][0, 0, 0] > 200 and frames[0][0, 0, 2] < 30        # RGB: red = 255 - 0 came out first


def test_bundled_video_and_box_parsing():
    source = open_frames(bundled_video('bikes.mp4'))
    assert next(iter(source)).shape == (272, 640, 3)
    assert parse_box('1, 2.5,3,4') == [1.0, 2.5, 3.0, 4.0]
    with pytest.raises(FileNotFoundError):
        bundled_video('no_such_video.mp4')


@pytest.mark.parametrize('backend', ['torch-fast', 'openvino'])
def test_cli_fp32_backends_reproduce_the_oracle(oracle_folder, backend):
    o = oracle('st50')
    run = _cli('--input', oracle_folder, '--init-box', ','.join(repr(float(v)) for v in o['init_box']),
               '--backend', backend, '--precision', 'fp32', '--max-frames', 6, '--quiet', '--checkpoint', 'synthetic')
    assert run.returncode == 0, run.stderr
    boxes = np.array([line.split(',') for line in run.stdout.splitlines()], float)
    np.testing.assert_allclose(boxes[1:], o['boxes'][1:6], atol=BOX_TOL_PX, rtol=0)


@pytest.mark.parametrize('openvino_installed', [True, False])
def test_cli_default_backend_auto(oracle_folder, openvino_installed):
    """Without --backend the tool runs 'auto' and names the engine it chose: openvino here (requirements.txt
    installs it; x86 CPU), torch in a Python where the openvino package cannot be imported (blocked with
    ``sys.modules['openvino'] = None``, Python's marker of a missing module). Both reproduce the oracle."""
    o = oracle('st50')
    args = ['--input', oracle_folder, '--init-box', ','.join(repr(float(v)) for v in o['init_box']),
            '--max-frames', 6, '--quiet', '--checkpoint', 'synthetic']
    if openvino_installed:
        run = _cli(*args)
    else:
        run = subprocess.run([sys.executable, '-c', "import sys; sys.modules['openvino'] = None; "
                              "from stark_ros.track import main; sys.exit(main())", *map(str, args)],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    expected = 'openvino' if openvino_installed else 'torch'
    assert 'STARK st50 on cpu: backend %s (auto), fp32' % expected in run.stderr, run.stderr
    boxes = np.array([line.split(',') for line in run.stdout.splitlines()], float)
    np.testing.assert_allclose(boxes[1:], o['boxes'][1:6], atol=BOX_TOL_PX, rtol=0)


def test_cli_unknown_backend(oracle_folder):
    run = _cli('--input', oracle_folder, '--init-box', '10,10,20,20', '--backend', 'tensorflow', '--quiet')
    assert run.returncode == 2 and 'unknown backend' in run.stderr
