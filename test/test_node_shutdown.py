"""Ctrl-C on ``ros2 launch``: the node process gets SIGINT twice (from the terminal and from launch). The second one
used to land in the clean-up (``destroy_node`` joining the worker, the shutdown summary) and the node exited with a
``KeyboardInterrupt`` traceback or aborted. The real ``tracker_node`` process, a real camera stream, real signals."""
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import REPO_ROOT, TrackerHarness
from test_ros_node import _frame_msg, oracle  # noqa: F401  (module fixture)


def _start_node(namespace):
    log = tempfile.TemporaryFile(mode='w+')
    # the working tree's package (python -m from the repository root), ST50: a track() call takes long enough
    # that the worker is busy when shutdown starts
    args = [sys.executable, '-m', 'stark_ros.ros.tracker_node', '--ros-args', '-r', '__ns:=' + namespace,
            '-p', 'checkpoint:=synthetic', '-p', 'variant:=st50', '-p', 'device:=cpu']
    return subprocess.Popen(args, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True), log


@pytest.mark.parametrize('gap', [0.0, 0.05, 0.3])
def test_two_sigints_shut_the_node_down_cleanly(ros_runner, ros_namespace, oracle, gap):  # noqa: F811
    data, _ = oracle
    namespace = '%s/shutdown%d' % (ros_namespace, int(gap * 1000))
    proc, log = _start_node(namespace)
    harness = TrackerHarness(ros_runner, namespace)
    try:
        harness.wait_connected(timeout=120.0)
        # a camera at 20 Hz; init once an image is buffered, then wait for a detection: the worker is tracking
        deadline = time.monotonic() + 120.0
        response = None
        while time.monotonic() < deadline:
            harness.publish(_frame_msg(data, 1))
            time.sleep(0.05)
            response = harness.init(data['init_box'])
            if response.success:
                break
        assert response is not None and response.success, response
        detections = 0
        while detections < 2 and time.monotonic() < deadline:
            harness.publish(_frame_msg(data, 1))
            time.sleep(0.05)
            detections += len(harness.drain())
        assert detections >= 2
        for _ in range(3):                      # keep the worker busy right up to the signals
            harness.publish(_frame_msg(data, 1))
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=60.0)
    finally:
        harness.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    output = log.read()
    assert returncode == 0, output[-3000:]
    for sign in ('Traceback', 'KeyboardInterrupt', 'terminate called'):
        assert sign not in output, output[-3000:]
    assert 'since start:' in output            # the shutdown summary was written


@pytest.mark.parametrize('module, override, error', [
    ('stark_ros.ros.tracker_node', 'max_targets:=many', 'InvalidParameterTypeException'),
    ('stark_ros.ros.tracker_node', 'checkpoint:=/nonexistent/missing.pth.tar', 'CheckpointError'),
    ('stark_ros.ros.lifecycle_node', 'max_targets:=many', 'InvalidParameterTypeException'),
])
def test_a_node_that_cannot_start_says_why_and_exits_1(ros_namespace, module, override, error):
    """A bad start-up (a parameter override of the wrong type, a missing checkpoint) ends the process with exit code
    1 and one FATAL line naming the cause, without a traceback (:func:`stark_ros.ros.tracker_node.run_node`)."""
    args = [sys.executable, '-m', module, '--ros-args', '-r', '__ns:=%s/badstart' % ros_namespace, '-p', override]
    run = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert 'cannot start: %s' % error in output, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
