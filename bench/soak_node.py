"""Soak the tracker_node process: a 30 Hz camera for ``--seconds`` (default 600) with re-initialisation every few
seconds, resets and parameter changes; prints crashes, missed answers and the node's resident-memory growth.

    .venv/bin/python bench/soak_node.py [--seconds 600] [--variant lightning] [--rate 30]

The node runs as users run it (``python -m stark_ros.ros.tracker_node`` in its own process, loopback DDS profile,
hermetic domain). This process plays a 640x480 bgr8 camera (the oracle frames, enlarged) and, on a schedule, calls
``~/init_target`` (every ``--init-every`` s), ``~/reset`` (every ``--reset-every`` s) and sets parameters through the
node's standard ``set_parameters`` service, as ``ros2 param set`` does (every ``--param-every`` s; one of the changes
is a ``template_size`` the Lightning network refuses, which must be answered with a reason). Every call must be
answered within ``--answer-timeout`` s. The node's VmRSS is sampled every second; growth is measured from the end of
the first minute (buffers, allocator pools and caches fill during it) to the end: the target is under 5 %.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, 'test')]

import conftest  # noqa: E402  (hermetic ROS environment: set before rclpy is imported)
import cv2  # noqa: E402
from oracles import oracle  # noqa: E402


def rss_mb(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


#: Parameter changes, cycled (name, value, expected to be accepted).
PARAMETER_CHANGES = [('class_id', 'soak_a', True), ('score_threshold', 0.4, True), ('frame_policy', 'newest', True),
                     ('update_interval', 100, True), ('search_factor', 4.5, True), ('frame_buffer_size', 20, True),
                     ('template_size', 160, False), ('class_id', 'soak_b', True), ('score_threshold', 0.5, True),
                     ('frame_policy', 'fresh', True), ('update_interval', 200, True), ('search_factor', 5.0, True),
                     ('frame_buffer_size', 30, True)]


class Calls:
    """Service calls with a deadline, counted."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.answered = self.missed = 0

    def call(self, client, request):
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.timeout):
            self.missed += 1
            return None
        self.answered += 1
        return future.result()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=600.0)
    parser.add_argument('--variant', default='lightning')
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--init-every', type=float, default=3.0)
    parser.add_argument('--reset-every', type=float, default=20.0)
    parser.add_argument('--param-every', type=float, default=7.0)
    parser.add_argument('--answer-timeout', type=float, default=30.0)
    args = parser.parse_args(argv)

    from builtin_interfaces.msg import Time
    from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType
    from rcl_interfaces.srv import SetParameters
    from stark_ros.ros.image_conversion import array_to_image_msg

    data = oracle('lightning')
    frames = [cv2.resize(f, (640, 480), interpolation=cv2.INTER_LINEAR) for f in data['frames_bgr']]
    init_box = [2.0 * v for v in data['init_box']]
    namespace = '/stark_soak_%d' % os.getpid()
    log = tempfile.NamedTemporaryFile(mode='w+', prefix='soak_node_', suffix='.log', delete=False)
    proc = subprocess.Popen([sys.executable, '-m', 'stark_ros.ros.tracker_node', '--ros-args', '-r',
                             '__ns:=' + namespace, '-p', 'checkpoint:=synthetic', '-p', 'variant:=%s' % args.variant,
                             '-p', 'device:=cpu'],
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    runner = conftest.RosRunner()
    harness = conftest.TrackerHarness(runner, namespace)
    param_client = harness.node.create_client(SetParameters, 'stark_tracker/set_parameters')
    calls = Calls(args.answer_timeout)
    counts = dict(frames=0, inits_ok=0, inits_failed=0, resets=0, params_ok=0, params_refused=0,
                  params_unexpected=0, detections=0)
    samples = []     # (seconds since start, node RSS MB)
    crashed = None
    try:
        harness.wait_connected(timeout=180.0)
        assert param_client.wait_for_service(timeout_sec=30.0), 'no parameter service'
        print('soak: %s for %.0f s at %.0f Hz, node pid %d, log %s' % (args.variant, args.seconds, args.rate,
                                                                     proc.pid, log.name), flush=True)
        start = time.monotonic()
        next_init = next_reset = next_param = next_sample = start
        param_index = 0
        period = 1.0 / args.rate
        i = 0
        while True:
            now = time.monotonic()
            elapsed = now - start
            if elapsed >= args.seconds:
                break
            if proc.poll() is not None:
                crashed = 'node exited with status %s after %.0f s' % (proc.returncode, elapsed)
                break
            stamp = Time(sec=1000000 + i // 1000, nanosec=(i % 1000) * 1000 + 1)
            harness.publish(array_to_image_msg(frames[i % len(frames)], 'bgr8', stamp=stamp, frame_id='soak_cam'))
            counts['frames'] += 1
            i += 1
            counts['detections'] += len(harness.drain())
            if now >= next_sample:
                samples.append((elapsed, rss_mb(proc.pid)))
                next_sample += 1.0
            if now >= next_init:
                response = calls.call(harness.init_client, _init_request(init_box, 'soak_%d' % i))
                if response is not None:
                    counts['inits_ok' if response.success else 'inits_failed'] += 1
                next_init += args.init_every
            elif now >= next_reset:
                from stark_ros_msgs.srv import Reset
                if calls.call(harness.reset_client, Reset.Request()) is not None:
                    counts['resets'] += 1
                next_reset += args.reset_every
            elif now >= next_param:
                name, value, expected = PARAMETER_CHANGES[param_index % len(PARAMETER_CHANGES)]
                param_index += 1
                request = SetParameters.Request(parameters=[_parameter_msg(ParameterMsg, ParameterType, name, value)])
                response = calls.call(param_client, request)
                if response is not None:
                    ok = response.results[0].successful
                    counts['params_ok' if ok else 'params_refused'] += 1
                    if ok != expected or (not ok and not response.results[0].reason):
                        counts['params_unexpected'] += 1
                next_param += args.param_every
            time.sleep(max(0.0, start + i * period - time.monotonic()))
    finally:
        harness.close()
        runner.shutdown()
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.seek(0)
        tail = log.read()[-2000:]
    valid = [(t, r) for t, r in samples if r is not None]
    after_minute = [r for t, r in valid if t >= 60.0]
    base = after_minute[0] if after_minute else float('nan')
    end = valid[-1][1] if valid else float('nan')
    growth = 100.0 * (end - base) / base if after_minute else float('nan')
    print('RESULT %.0f s, crash: %s, missed answers: %d of %d calls, exit status %s; frames published %d, detections '
          '%d; inits %d ok / %d refused, resets %d, parameter sets %d accepted / %d refused (%d unexpected); node '
          'RSS at 60 s %.1f MB, end %.1f MB, max %.1f MB, growth after the first minute %+.2f %%'
          % (valid[-1][0] if valid else 0.0, crashed or 'none', calls.missed, calls.answered + calls.missed,
             proc.returncode, counts['frames'], counts['detections'], counts['inits_ok'], counts['inits_failed'],
             counts['resets'], counts['params_ok'], counts['params_refused'], counts['params_unexpected'], base, end,
             max((r for _, r in valid), default=float('nan')), growth))
    if crashed:
        print(tail)
    ok = (not crashed and calls.missed == 0 and counts['params_unexpected'] == 0 and proc.returncode == 0
          and growth < 5.0)
    return 0 if ok else 1


def _init_request(box, target_id):
    from stark_ros_msgs.srv import InitTarget
    x, y, w, h = box
    req = InitTarget.Request()
    req.box.center.position.x, req.box.center.position.y = x + w / 2.0, y + h / 2.0
    req.box.size_x, req.box.size_y = float(w), float(h)
    req.id = target_id
    return req


def _parameter_msg(ParameterMsg, ParameterType, name, value):
    msg = ParameterMsg(name=name)
    if isinstance(value, bool):
        msg.value.type, msg.value.bool_value = ParameterType.PARAMETER_BOOL, value
    elif isinstance(value, int):
        msg.value.type, msg.value.integer_value = ParameterType.PARAMETER_INTEGER, value
    elif isinstance(value, float):
        msg.value.type, msg.value.double_value = ParameterType.PARAMETER_DOUBLE, value
    else:
        msg.value.type, msg.value.string_value = ParameterType.PARAMETER_STRING, value
    return msg


if __name__ == '__main__':
    sys.exit(main())
