"""The managed (lifecycle) ``stark_tracker`` node over real rclpy / DDS, driven the way ``ros2 lifecycle set`` /
``ros2 lifecycle get`` drive it: ``lifecycle_msgs/srv/ChangeState`` on ``<node>/change_state`` (transition id and
label) and ``lifecycle_msgs/srv/GetState`` on ``<node>/get_state``, from a separate client node.

One :class:`ManagedTrackerNode` (the shipped lite0 model, torch backend, one inference thread) serves the in-process
tests, which run in file order through unconfigured -> configure -> activate -> deactivate -> activate -> cleanup;
real frames of ``../shared/eval/surfer`` (every third frame: the surfer's head moves about 90 px, more than three
times its size, so a box that stopped following it fails). A bad checkpoint is tried on the installed
``lifecycle_tracker_node`` executable in its own process (the process must live on).
"""
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time

import cv2
import pytest

from conftest import REPO_ROOT, RosRunner, make_stamp, wait_for
from dataset_layouts import source_sequence
from node_io_helpers import detection_with_stamp

STEP = 3            # every third frame of the sequence
FRAMES = 14         # frames 0, 3, ..., 39


@pytest.fixture(scope='module')
def surfer():
    """``(BGR frames, ground-truth boxes)``: every third frame of ``surfer``, boxes (x, y, w, h) pixels."""
    paths, boxes = source_sequence('surfer', STEP * (FRAMES - 1) + 1)
    paths, boxes = paths[::STEP], boxes[::STEP]
    return [cv2.imread(p, cv2.IMREAD_COLOR) for p in paths], [tuple(float(v) for v in b) for b in boxes]


class LifecycleClient:
    """A test node beside a ``stark_tracker`` lifecycle node in ``namespace``: lifecycle service clients (what
    ``ros2 lifecycle`` calls), an image publisher, a ``detection`` subscription and an ``~/init_target`` client."""

    def __init__(self, runner, namespace, node_name='stark_tracker'):
        import rclpy
        from lifecycle_msgs.srv import ChangeState, GetState
        from sensor_msgs.msg import Image
        from stark_ros_msgs.srv import InitTarget
        from vision_msgs.msg import Detection2D
        self.runner = runner
        self.fqn = '%s/%s' % (namespace, node_name)
        self.node = rclpy.create_node('stark_lifecycle_client', namespace=namespace, context=runner.context)
        self.change_client = self.node.create_client(ChangeState, node_name + '/change_state')
        self.state_client = self.node.create_client(GetState, node_name + '/get_state')
        self.init_client = self.node.create_client(InitTarget, node_name + '/init_target')
        self.image_pub = self.node.create_publisher(Image, 'image', 10)
        self.detections = queue.Queue()
        self.detection_sub = self.node.create_subscription(Detection2D, 'detection', self.detections.put, 50)
        runner.add(self.node)
        assert wait_for(lambda: self.change_client.service_is_ready() and self.state_client.service_is_ready(),
                        60.0), 'lifecycle services of %s not discovered' % self.fqn

    def _call(self, client, request, timeout=120.0):
        future = client.call_async(request)
        assert wait_for(future.done, timeout), 'service %s did not answer' % client.srv_name
        return future.result()

    def state(self):
        """The node's state label (``ros2 lifecycle get``)."""
        from lifecycle_msgs.srv import GetState
        return self._call(self.state_client, GetState.Request()).current_state.label

    def transition(self, label):
        """Request a transition by label (``ros2 lifecycle set <node> <label>``); True when it succeeded."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState
        ids = {'configure': Transition.TRANSITION_CONFIGURE, 'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE, 'cleanup': Transition.TRANSITION_CLEANUP,
               'shutdown': Transition.TRANSITION_ACTIVE_SHUTDOWN}
        request = ChangeState.Request(transition=Transition(id=ids[label], label=label))
        return self._call(self.change_client, request).success

    def services(self):
        """Names of the services the tracker node serves (clients, such as ours, are not listed)."""
        namespace, _, name = self.fqn.rpartition('/')
        try:
            return {n for n, _types in self.node.get_service_names_and_types_by_node(name, namespace)}
        except Exception:  # noqa: BLE001 - the node is not discovered (yet / any more)
            return set()

    def init(self, msg, box_xywh):
        """``~/init_target`` on ``msg`` (by stamp) with a box in pixels; the response."""
        from stark_ros.ros.messages import xywh_to_bbox
        from stark_ros_msgs.srv import InitTarget
        request = InitTarget.Request(stamp=msg.header.stamp, id='surfer')
        xywh_to_bbox(box_xywh, request.box)
        return self._call(self.init_client, request, timeout=60.0)

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.detections.get_nowait())
            except queue.Empty:
                return out

    def detection_for(self, stamp, timeout=30.0):
        """The detection of the image with ``stamp``, or None after ``timeout`` seconds."""
        return detection_with_stamp(self.detections, stamp, timeout)

    def close(self):
        self.runner.remove(self.node)


_stamps = iter(range(1, 10 ** 6))


def _msg(image_bgr):
    from stark_ros.ros.image_conversion import array_to_image_msg
    return array_to_image_msg(image_bgr, 'bgr8', stamp=make_stamp(next(_stamps), base_sec=11000),
                              frame_id='cam_lifecycle')


def _publish_counted(node, client, msg):
    """Publish ``msg`` until the node counted it (best-effort QoS may drop a sample; a duplicate would be tracked
    twice)."""
    before = node.stats()['received']
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        client.image_pub.publish(msg)
        if wait_for(lambda: node.stats()['received'] > before, 1.0):
            return
    pytest.fail('image never arrived')


def _on_object(det, gt):
    """Whether a detection's centre lies inside the ground-truth box (x, y, w, h)."""
    b = det.bbox
    x, y, w, h = gt
    return abs(b.center.position.x - (x + w / 2)) < w / 2 and abs(b.center.position.y - (y + h / 2)) < h / 2


def _track(node, client, frames, boxes, count):
    """Initialise on frame 0 with its ground truth, then feed frames 1..count-1 one by one; every detection must
    be on the real object."""
    first = _msg(frames[0])
    _publish_counted(node, client, first)
    response = client.init(first, boxes[0])
    assert response.success, response.message
    client.drain()
    for frame, gt in zip(frames[1:count], boxes[1:count]):
        msg = _msg(frame)
        _publish_counted(node, client, msg)
        det = client.detection_for(msg.header.stamp)
        assert det is not None, 'no detection for a tracked frame'
        assert det.id == 'surfer' and det.header.frame_id == 'cam_lifecycle'
        assert _on_object(det, gt), (det.bbox, gt)


def _managed_node(ros_runner, namespace):
    """An in-process ManagedTrackerNode (shipped model, torch on the CPU, 1 thread) in ``namespace`` on the runner's
    executor, and a :class:`LifecycleClient` beside it."""
    from rclpy.parameter import Parameter
    from stark_ros.ros.lifecycle_node import ManagedTrackerNode
    overrides = [Parameter('device', value='cpu'), Parameter('backend', value='torch'),
                 Parameter('num_threads', value=1)]
    node = ros_runner.add(ManagedTrackerNode(context=ros_runner.context, namespace=namespace,
                                             parameter_overrides=overrides))
    return node, LifecycleClient(ros_runner, namespace)


@pytest.fixture(scope='module')
def managed(ros_runner, ros_namespace):
    node, client = _managed_node(ros_runner, ros_namespace + '/managed')
    yield node, client
    client.close()
    ros_runner.remove(node)


def _quiet(node, client, frames, seconds=1.5):
    """Publish frames for ``seconds``: the node must take none and publish no detection."""
    received = node.stats()['received']
    client.drain()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.image_pub.publish(_msg(frames[1]))
        time.sleep(0.05)
    time.sleep(0.5)
    assert node.stats()['received'] == received
    assert client.drain() == []


def _diagnostics_says(client, predicate, timeout=10.0):
    """True when a ``/diagnostics`` status of the managed node satisfying ``predicate`` arrives within ``timeout``."""
    from diagnostic_msgs.msg import DiagnosticArray
    seen = []
    sub = client.node.create_subscription(DiagnosticArray, '/diagnostics',
                                          lambda m: seen.extend(s for s in m.status if s.name == client.fqn), 10)
    try:
        return wait_for(lambda: any(predicate(s) for s in list(seen)), timeout)
    finally:
        client.node.destroy_subscription(sub)


def test_starts_unconfigured_without_model_topics_or_init_service(managed, surfer):
    node, client = managed
    frames, _ = surfer
    assert client.state() == 'unconfigured'
    assert node.tracker is None and node.load_count == 0
    # the graph shows the node's lifecycle services, and no ~/init_target
    assert wait_for(lambda: client.fqn + '/get_state' in client.services(), 20.0)
    assert client.fqn + '/init_target' not in client.services()
    assert client.image_pub.get_subscription_count() == 0 and client.detection_sub.get_publisher_count() == 0
    _quiet(node, client, frames)


def test_configure_loads_the_model_and_inactive_takes_no_images(managed, surfer):
    node, client = managed
    frames, boxes = surfer
    assert client.transition('configure')
    assert client.state() == 'inactive'
    assert node.tracker is not None and node.load_count == 1
    # publishers and services exist (the detection topic is matched), but no image subscription
    assert wait_for(lambda: client.detection_sub.get_publisher_count() >= 1 and client.init_client.service_is_ready(),
                    20.0)
    assert client.image_pub.get_subscription_count() == 0
    _quiet(node, client, frames)
    response = client.init(_msg(frames[0]), boxes[0])
    assert not response.success and 'not active' in response.message, response.message
    assert _diagnostics_says(client, lambda s: s.message.startswith('inactive')), 'no "inactive" /diagnostics'


def test_activate_tracks_a_real_object(managed, surfer):
    node, client = managed
    frames, boxes = surfer
    tracker = node.tracker
    assert client.transition('activate')
    assert client.state() == 'active'
    assert wait_for(lambda: client.image_pub.get_subscription_count() >= 1, 20.0)
    _track(node, client, frames, boxes, FRAMES)
    assert node.stats()['processed'] >= FRAMES - 1     # more if a frame re-sent after a slow delivery came twice
    assert node.tracker is tracker and node.load_count == 1
    assert _diagnostics_says(client, lambda s: {kv.key: kv.value for kv in s.values}.get('active') == 'true'
                             and 'surfer' in {kv.key: kv.value for kv in s.values}.get('target id', ''))


def test_deactivate_stops_detections_and_keeps_the_model(managed, surfer):
    node, client = managed
    frames, _ = surfer
    tracker = node.tracker
    assert node.target_ids() == ['surfer']
    assert client.transition('deactivate')
    assert client.state() == 'inactive'
    assert node.target_ids() == [] and node.stats()['buffered'] == 0     # targets and stale images dropped
    assert wait_for(lambda: client.image_pub.get_subscription_count() == 0, 20.0)
    _quiet(node, client, frames)
    assert node.tracker is tracker and node.load_count == 1
    assert _diagnostics_says(client, lambda s: s.message.startswith('inactive'))


def test_activate_again_tracks_without_reloading(managed, surfer):
    node, client = managed
    frames, boxes = surfer
    tracker = node.tracker
    assert client.transition('activate')
    assert client.state() == 'active'
    assert node.tracker is tracker and node.load_count == 1, 'activate loaded the model again'
    assert wait_for(lambda: client.image_pub.get_subscription_count() >= 1, 20.0)
    _track(node, client, frames, boxes, 6)


def test_cleanup_releases_the_model_and_the_services(managed, surfer):
    node, client = managed
    assert client.transition('deactivate')
    assert client.transition('cleanup')
    assert client.state() == 'unconfigured'
    assert node.tracker is None
    assert wait_for(lambda: client.fqn + '/init_target' not in client.services()
                    and client.detection_sub.get_publisher_count() == 0, 20.0)


def test_shutdown_from_active_stops_and_releases_everything(managed, surfer):
    """``shutdown`` from ``active`` (as a lifecycle manager ends a running node): finalized, the tracker thread
    stopped, the model released, the topics and services gone."""
    node, client = managed
    assert client.transition('configure') and client.transition('activate')
    assert client.state() == 'active' and node.tracker is not None
    assert client.transition('shutdown')
    assert client.state() == 'finalized'
    assert node.tracker is None and node._worker is None
    assert wait_for(lambda: client.fqn + '/init_target' not in client.services()
                    and client.detection_sub.get_publisher_count() == 0, 20.0)


def test_configure_with_a_missing_checkpoint_fails_and_the_process_lives_on(ros_namespace, tmp_path):
    """The installed ``lifecycle_tracker_node`` with a checkpoint that does not exist: configure fails with the
    reason logged, the node stays unconfigured and keeps answering, and Ctrl-C stops it cleanly."""
    from ament_index_python.packages import get_package_prefix
    exe = os.path.join(get_package_prefix('stark_ros'), 'lib', 'stark_ros', 'lifecycle_tracker_node')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT] + sys.path[1:]), PYTHONUNBUFFERED='1')
    namespace = ros_namespace + '/badckpt'
    missing = str(tmp_path / 'missing.pth.tar')
    log = tempfile.TemporaryFile(mode='w+')
    proc = subprocess.Popen([exe, '--ros-args', '-p', 'checkpoint:=' + missing, '-p', 'device:=cpu',
                             '-r', '__ns:=' + namespace], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    runner = RosRunner()
    try:
        client = LifecycleClient(runner, namespace)
        assert client.state() == 'unconfigured'
        assert not client.transition('configure')
        assert proc.poll() is None, 'the node process died'
        assert client.state() == 'unconfigured'
        assert not client.transition('activate')            # no transition from unconfigured: refused
        assert client.state() == 'unconfigured'
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=60) == 0
        except subprocess.TimeoutExpired:
            log.seek(0)
            pytest.fail('the node did not stop within 60 s of SIGINT; its log ends:\n%s' % log.read()[-3000:])
    finally:
        runner.shutdown()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    output = log.read()
    assert 'configure failed' in output and 'missing.pth.tar' in output, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]


def test_an_exception_in_a_transition_is_logged_with_its_cause(ros_runner, ros_namespace, capfd):
    """rclpy turns an exception in a transition callback into the ERROR transition without logging it; the node
    logs it with its traceback (``_log_exceptions``), then ``on_error`` releases everything: unconfigured. The
    exception is injected into the node's own start step (the ROS side is real)."""
    node, client = _managed_node(ros_runner, ros_namespace + '/transition_error')
    try:
        assert client.transition('configure')

        def broken_start():
            raise RuntimeError('injected start failure')
        node._core_start = broken_start
        assert not client.transition('activate')
        assert client.state() == 'unconfigured'
        assert node.tracker is None, 'on_error did not release the model'
        logged = capfd.readouterr().err
        assert 'on_activate raised RuntimeError: injected start failure' in logged, logged[-3000:]
        assert 'Traceback' in logged and 'transition error from state' in logged, logged[-3000:]
    finally:
        client.close()
        ros_runner.remove(node)
