"""Test set-up shared by every test module: hermetic ROS 2 environment and ROS fixtures.

Everything at module level here runs before any test module is imported, hence before rclpy is
imported or initialised:

* the repository root goes first on ``sys.path`` (tests see the working tree, not an older
  ``pip install .`` copy of stark_ros);
* ``ROS_DOMAIN_ID`` is derived from the process id (1..101), so concurrent test runs on one machine
  do not see each other; ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and the loopback-only Fast DDS
  profile ``config/fastdds_localhost.xml`` keep discovery off the network interfaces. The ROS tests
  also put their nodes in a per-run namespace (fixture ``ros_namespace``), so even a domain-id
  collision cannot mix topics of two runs.

Set ``STARK_TEST_KEEP_ROS_ENV=1`` to keep a ROS environment you exported yourself.
"""
import os
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[:1] != [REPO_ROOT]:
    sys.path.insert(0, REPO_ROOT)

if os.environ.get('STARK_TEST_KEEP_ROS_ENV') != '1':
    os.environ['ROS_DOMAIN_ID'] = str(1 + os.getpid() % 101)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.pop('ROS_STATIC_PEERS', None)
    os.environ.pop('ROS_LOCALHOST_ONLY', None)  # deprecated; conflicts with the discovery range
    os.environ.pop('FASTDDS_BUILTIN_TRANSPORTS', None)
    _profile = os.path.join(REPO_ROOT, 'config', 'fastdds_localhost.xml')
    if os.path.isfile(_profile):
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = _profile
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')

import pytest  # noqa: E402


def reference_file(name):
    """Path of an acceptance fixture in ``test/fixtures``; fails the test when it is absent (they are mandatory)."""
    from oracles import reference_path
    return reference_path(name)


def wait_for(predicate, timeout, interval=0.01):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope='session')
def ros_namespace():
    """A namespace unique to this test run, e.g. ``/stark_test_12345``."""
    return '/stark_test_%d' % os.getpid()


class RosRunner:
    """An rclpy context with an executor spinning in a background thread.

    Nodes added with :meth:`add` are spun until :meth:`shutdown`. Real rclpy, real DDS.

    Args:
        num_threads: 1 = a SingleThreadedExecutor (what ``tracker_node`` itself uses), more = a
            MultiThreadedExecutor with that many threads (what a user composing nodes might use).
    """

    def __init__(self, num_threads=1):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        if num_threads == 1:
            self.executor = SingleThreadedExecutor(context=self.context)
        else:
            self.executor = MultiThreadedExecutor(num_threads=num_threads, context=self.context)
        self.nodes = []
        self._thread = threading.Thread(target=self._spin, name='ros-test-executor', daemon=True)
        self._thread.start()

    def _spin(self):
        from rclpy.executors import ExternalShutdownException
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:  # noqa: BLE001 - Jazzy's shutdown race (as in compat.spin_until_shutdown), else re-raised
            if self.context.ok():
                raise

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def remove(self, node):
        self.executor.remove_node(node)
        self.nodes.remove(node)
        node.destroy_node()

    def shutdown(self):
        import rclpy
        for node in list(self.nodes):
            self.remove(node)
        self.executor.shutdown(timeout_sec=5.0)
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=10.0)


@pytest.fixture(scope='module')
def ros_runner():
    """Module-scoped :class:`RosRunner` (rclpy initialised in its own context)."""
    runner = RosRunner()
    yield runner
    runner.shutdown()


class TrackerHarness:
    """Test-side ROS node that talks to a ``stark_tracker`` node over real DDS.

    Publishes ``<namespace>/image``, collects ``<namespace>/detection`` into a queue and calls
    ``<namespace>/stark_tracker/init_target`` and ``.../reset``.
    """

    def __init__(self, runner, namespace):
        import queue

        import rclpy
        from sensor_msgs.msg import Image
        from stark_ros_msgs.srv import InitTarget, Reset
        from vision_msgs.msg import Detection2D

        self.runner = runner
        self.node = rclpy.create_node('stark_test_harness', namespace=namespace, context=runner.context)
        self.detections = queue.Queue()
        self.image_pub = self.node.create_publisher(Image, 'image', 10)
        self.detection_sub = self.node.create_subscription(Detection2D, 'detection', self.detections.put, 50)
        self.init_client = self.node.create_client(InitTarget, 'stark_tracker/init_target')
        self.reset_client = self.node.create_client(Reset, 'stark_tracker/reset')
        runner.add(self.node)

    def wait_connected(self, timeout=15.0):
        ok = wait_for(lambda: (self.image_pub.get_subscription_count() >= 1
                               and self.detection_sub.get_publisher_count() >= 1
                               and self.init_client.service_is_ready() and self.reset_client.service_is_ready()),
                      timeout)
        assert ok, 'tracker node not discovered within %.0f s' % timeout

    def call(self, client, request, timeout=30.0):
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(timeout), 'service %s did not answer within %.0f s' % (client.srv_name, timeout)
        return future.result()

    def init(self, box_xywh=None, stamp=None, target_id='', bbox=None):
        """Call ~/init_target with an (x, y, w, h) pixel box (or a ready BoundingBox2D) and optional stamp."""
        from stark_ros_msgs.srv import InitTarget
        req = InitTarget.Request()
        if bbox is not None:
            req.box = bbox
        else:
            x, y, w, h = (float(v) for v in box_xywh)
            req.box.center.position.x, req.box.center.position.y = x + w / 2.0, y + h / 2.0
            req.box.size_x, req.box.size_y = w, h
        if stamp is not None:
            req.stamp = stamp
        req.id = target_id
        return self.call(self.init_client, req)

    def reset(self, target_id=''):
        """Call ~/reset (stark_ros_msgs/Reset) for ``target_id`` (empty: every target)."""
        from stark_ros_msgs.srv import Reset
        return self.call(self.reset_client, Reset.Request(id=target_id))

    def publish(self, msg):
        self.image_pub.publish(msg)

    def publish_until(self, msg, predicate, timeout=15.0, resend_every=1.0):
        """Publish ``msg`` and re-send it every ``resend_every`` s until ``predicate()`` holds.

        The node's image subscription is best effort with depth 1 (sensor-data QoS), so under load a
        single sample may be overwritten or lost before the node's executor takes it; that is the
        contract, not a fault. Returns the predicate's last value (falsy after ``timeout`` seconds).
        """
        deadline = time.monotonic() + timeout
        while True:
            self.publish(msg)
            value = wait_for(predicate, min(resend_every, max(0.0, deadline - time.monotonic())))
            if value or time.monotonic() >= deadline:
                return value

    def next_detection(self, timeout=20.0):
        """The next Detection2D, or None after ``timeout`` seconds."""
        import queue
        try:
            return self.detections.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self):
        """Remove and return all queued detections."""
        out = []
        while not self.detections.empty():
            out.append(self.detections.get_nowait())
        return out

    def close(self):
        self.runner.remove(self.node)


def start_tracker_node(runner, namespace, **params):
    """Create a ``TrackerNode`` (in-process, real rclpy) with parameter overrides and add it to ``runner``.

    ``backend`` defaults to ``torch`` here, the eager reference the node tests were written against (the node's
    own default, ``auto``, is checked by ``test_ros_node.py::test_default_backend_auto``); pass ``backend=None``
    to keep the node's default."""
    from rclpy.parameter import Parameter
    from stark_ros.ros.tracker_node import TrackerNode
    params.setdefault('backend', 'torch')
    if params['backend'] is None:
        del params['backend']
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    return runner.add(TrackerNode(context=runner.context, namespace=namespace, parameter_overrides=overrides))


def make_stamp(index, base_sec=1000):
    """A distinct, non-zero ``builtin_interfaces/Time`` for frame ``index`` (nanoseconds non-zero too)."""
    from builtin_interfaces.msg import Time
    return Time(sec=base_sec + index, nanosec=1000 + index)
