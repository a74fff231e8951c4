"""Play frames through a ``stark_tracker`` node over real DDS and collect its detections (no display, no files).

:func:`run_pipeline` is the harness of the main job (``python -m stark_ros.demo``) and of the node benchmarks
(``bench/bench_node.py``, ``bench/soak_node.py``): a :class:`~stark_ros.ros.player.VideoPlayer` publishes the
frames on ``image`` in real time, the node (in this process, or in its own with ``node_process=True``, as on a
robot) is initialised through ``~/init_target`` on frame 0 by stamp, and a :class:`DetectionCollector` records
every ``detection`` with its receipt time. Everything runs in its own ROS namespace and context.
"""
import os
import sys
import threading
import time
from dataclasses import dataclass

def _hermetic_dds():
    """Keep DDS discovery on this machine and use the shared-memory profile for large images (before rclpy)."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if 'FASTDDS_DEFAULT_PROFILES_FILE' not in os.environ:
        candidates = [os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                   'config')]
        try:
            from ament_index_python.packages import get_package_share_directory
            candidates.insert(0, os.path.join(get_package_share_directory('stark_ros'), 'config'))
        except Exception:  # noqa: BLE001 - not installed in an ament prefix: use the source tree's copy
            pass
        for folder in candidates:
            profile = os.path.join(folder, 'fastdds_localhost.xml')
            if os.path.isfile(profile):
                os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
                break


class DetectionCollector:
    """Subscribes to ``detection`` and records (receipt time ns, message) pairs, and to ``status``
    (``stark_ros_msgs/TargetStatusArray``) and records each target's status by image stamp (ns)."""

    def __init__(self, node):
        from stark_ros_msgs.msg import TargetStatusArray
        from vision_msgs.msg import Detection2D
        self.lock = threading.Lock()
        self.received = []
        self.statuses = {}
        self.subscription = node.create_subscription(Detection2D, 'detection', self._on_detection, 100)
        self.status_subscription = node.create_subscription(TargetStatusArray, 'status', self._on_status, 100)

    def _on_detection(self, msg):
        with self.lock:
            self.received.append((time.time_ns(), msg))

    def _on_status(self, msg):
        from stark_ros.ros.messages import stamp_to_ns
        with self.lock:
            self.statuses[stamp_to_ns(msg.header.stamp)] = {s.id: s for s in msg.targets}

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def status_snapshot(self):
        """Image stamp (ns) -> {target id: ``stark_ros_msgs/TargetStatus``}."""
        with self.lock:
            return dict(self.statuses)


def _alive(process):
    """True; raises RuntimeError with the end of its log when the node's child process has exited."""
    if process is not None and process.popen.poll() is not None:
        tail = process.log_text()[-2000:]
        raise RuntimeError('the tracker node process exited with status %d; the end of its log:\n%s'
                           % (process.popen.returncode, tail))
    return True


def _wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@dataclass
class PipelineRun:
    """What :func:`run_pipeline` observed.

    Attributes:
        played: frames published (frame 0 included).
        play_seconds: wall time of playing frames 1..N, seconds.
        detections: [(receipt time ns, vision_msgs/Detection2D)] in arrival order.
        frame_of_stamp: image stamp (ns) -> frame index.
        node_stats: the tracker node's counters (:meth:`TrackerNode.stats`) at the end; with an in-process node
            also ``'timing'`` (:meth:`TrackerNode.timing`) and ``'engine'``: ``(variant, backend, precision)`` of
            its tracker (the backend ``auto`` resolved to).
        synthetic: the node ran synthetic weights.
        init_message: the node's answer to ``~/init_target``.
        node_log: the node process's log (``node_process=True``; '' otherwise).
        statuses: image stamp (ns) -> {target id: ``stark_ros_msgs/TargetStatus``} from the ``status`` topic.
    """

    played: int
    play_seconds: float
    detections: list
    frame_of_stamp: dict
    node_stats: dict
    synthetic: bool
    init_message: str
    node_log: str = ''
    statuses: dict = None


def run_pipeline(frames, init_box, rate, node_parameters=(), on_frame=None, node_process=False, namespace=None):
    """Play ``frames`` through a ``stark_tracker`` node over DDS, initialised on frame 0 by stamp.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB frames (frame 0 first).
        init_box: (x, y, w, h) on frame 0, pixels.
        rate: frames per second of the player (real-time schedule).
        node_parameters: ``rclpy.parameter.Parameter`` overrides for the node (checkpoint, variant...).
        on_frame: optional ``callback(index, rgb, stamp)`` after each publication.
        node_process: run the node in its own process (as on a robot) instead of in this one. The player and
            the collector share this process's interpreter lock; at camera rates a fast tracker (Lightning) in
            the same process is starved by them. ``node_stats`` then holds only what can be seen from outside.
        namespace: ROS namespace of every node of the run (default ``/stark_demo_<pid>``), so that two runs, or a
            robot's own ``image`` topic, never mix with this one.
    Returns:
        :class:`PipelineRun`.
    Raises:
        ValueError: no frame, or the node refused the init box (its message says why).
        RuntimeError: the node did not come up on DDS, or its process (``node_process``) exited.
    """
    _hermetic_dds()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from stark_ros_msgs.srv import InitTarget

    from stark_ros.ros.player import VideoPlayer, play
    from stark_ros.ros.messages import stamp_to_ns, xywh_to_bbox
    from stark_ros.ros.tracker_node import TrackerNode

    namespace = namespace or '/stark_demo_%d' % os.getpid()
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes, executor, process = [], None, None
    try:
        if node_process:
            process = _NodeProcess(node_parameters, namespace)
            tracker_node = None
        else:
            tracker_node = TrackerNode(context=context, namespace=namespace,
                                       parameter_overrides=list(node_parameters))
            nodes.append(tracker_node)
        player = VideoPlayer(context=context, namespace=namespace)
        nodes.append(player)
        collector_node = rclpy.create_node('stark_demo_collector', context=context, namespace=namespace)
        nodes.append(collector_node)
        collector = DetectionCollector(collector_node)
        init_client = collector_node.create_client(InitTarget, 'stark_tracker/init_target')
        # one executor thread: its callbacks are trivial, and rclpy's MultiThreadedExecutor would compete for the
        # interpreter lock (and, with an in-process node, with the inference thread; see tracker_node.main)
        executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        if not (_wait(lambda: _alive(process) and init_client.wait_for_service(timeout_sec=0.5), 60.0) and _wait(
                lambda: _alive(process) and player.publisher.get_subscription_count() > 0
                and collector.subscription.get_publisher_count() > 0
                and collector.status_subscription.get_publisher_count() > 0, 20.0)):
            raise RuntimeError('the tracker node did not come up on DDS within 60 s')

        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            raise ValueError('no frame to play')
        request = InitTarget.Request()
        xywh_to_bbox(init_box, request.box)
        request.id = 'demo_target'
        for _attempt in range(50):      # best-effort QoS: re-send frame 0 until the node has buffered it
            stamp0 = player.publish_frame(first)
            time.sleep(0.05)
            request.stamp = stamp0
            response = init_client.call(request, timeout_sec=60.0)
            if response is None or response.success or 'no buffered image has stamp' not in response.message \
                    and 'no image received yet' not in response.message:
                break
        if response is None or not response.success:
            raise ValueError('init_target failed: %s' % (response.message if response else 'no response'))
        if on_frame is not None:
            on_frame(0, first, stamp0)

        frame_of_stamp = {stamp_to_ns(stamp0): 0}

        def published(index, rgb, stamp):
            _alive(process)
            frame_of_stamp[stamp_to_ns(stamp)] = index + 1
            if on_frame is not None:
                on_frame(index + 1, rgb, stamp)

        started = time.monotonic()
        played = 1 + play(player, frames, rate, on_frame=published)
        play_seconds = time.monotonic() - started
        if tracker_node is None:
            time.sleep(2.0)             # the last frame's detection
            detections = collector.snapshot()
            stats = {'processed': len(detections), 'dropped': played - 1 - len(detections), 'lost': 0}
            synthetic = 'SYNTHETIC' in process.log_text()
        else:
            _wait(lambda: not tracker_node.stats()['busy'] and tracker_node.stats()['pending'] == 0, 30.0)
            _wait(lambda: len(collector.snapshot()) >= tracker_node.stats()['processed']
                  and len(collector.status_snapshot()) >= tracker_node.stats()['processed'], 5.0)
            detections, stats = collector.snapshot(), tracker_node.stats()
            synthetic = tracker_node.tracker.synthetic_weights
            stats['timing'] = tracker_node.timing()
            info = getattr(tracker_node.tracker, 'info', {})
            stats['engine'] = (info.get('variant'), info.get('backend'), info.get('precision'))
        run = PipelineRun(played, play_seconds, detections, frame_of_stamp, stats, synthetic, response.message,
                          statuses=collector.status_snapshot())
    finally:
        if executor is not None:
            executor.shutdown()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        if process is not None:
            log = process.stop()
    if process is not None:
        run.node_log = log
    return run


class _NodeProcess:
    """``python -m stark_ros.ros.tracker_node`` in a child process, its log in a temporary file."""

    def __init__(self, parameters, namespace):
        import subprocess
        import tempfile
        self.log = tempfile.TemporaryFile(mode='w+')
        args = [sys.executable, '-m', 'stark_ros.ros.tracker_node', '--ros-args', '-r', '__ns:=' + namespace]
        for p in parameters:
            args += ['-p', '%s:=%s' % (p.name, p.value if p.value != '' else '""')]
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def log_text(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        """Interrupt the node (it logs its totals), wait for it, and return its whole log."""
        import signal
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=20)
        except Exception:  # noqa: BLE001
            self.popen.kill()
            self.popen.wait()
        text = self.log_text()
        self.log.close()
        return text



def latencies_ms(run):
    """Latency of every detection of a :class:`PipelineRun`, image stamp to receipt, ms, in arrival order."""
    from stark_ros.ros.messages import stamp_to_ns
    return [(receipt_ns - stamp_to_ns(det.header.stamp)) / 1e6 for receipt_ns, det in run.detections]
