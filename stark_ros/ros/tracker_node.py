"""``stark_tracker``: the ROS 2 node that runs the STARK tracker on a camera topic.

The node is wiring only: pixels are converted by :mod:`stark_ros.ros.image_conversion`, tracking is
:class:`stark_ros.tracker.multi_tracker.MultiTracker` (several targets by id, one batched network call per image),
the targets' ids and output messages are :mod:`stark_ros.ros.targets`, their states
:mod:`stark_ros.tracker.target_state`.

Interfaces (names relative to the node's namespace; remap ``image`` to your camera topic):

* subscribes ``image`` (``sensor_msgs/msg/Image``, sensor-data QoS: best effort, keep last 1). Encodings:
  see :data:`stark_ros.ros.image_conversion.SUPPORTED_ENCODINGS`. Malformed images (``step`` too small,
  truncated ``data``, unknown encoding, empty size) are logged (throttled) and skipped. With parameter
  ``image_transport`` = ``compressed`` it subscribes ``<image>/compressed`` (``sensor_msgs/msg/CompressedImage``,
  JPEG or PNG) instead, decoded by the worker (:mod:`stark_ros.ros.image_input`); data that do not decode are
  skipped and counted like malformed images.
* publishes ``detection`` (``vision_msgs/msg/Detection2D``, reliable, depth 10), one per target per tracked
  frame: ``header`` = the image's header (stamp and frame_id), ``bbox.center.position``
  = box centre and ``bbox.size_x/size_y`` = width/height, all in **pixels** of the image; ``id`` = the
  target id; ``results[0].hypothesis.class_id`` = parameter ``class_id``, ``results[0].hypothesis.score``
  = the tracker's confidence in [0, 1].

  **S50 has no score head**: its detections carry ``score = 1.0``. Reason: S50 itself never gates on
  confidence (every output box is accepted and the template never changes), so 1.0 states exactly what
  the tracker does; NaN would silently break planners (``NaN > t`` is always false, JSON/YAML
  serialisers choke on it) and a made-up value in (0, 1) would look like a real confidence. A consumer
  that needs a real confidence must use an ST model (variant ``st50``/``st101``).
* publishes ``detections`` (``vision_msgs/msg/Detection2DArray``, reliable, depth 10), one per tracked image while
  at least one target is set: the image's header and one Detection2D per target (the same messages as on
  ``detection``). Targets in state ``lost`` are left out of both when ``publish_when_lost`` is false.
* publishes ``status`` (``stark_ros_msgs/msg/TargetStatusArray``, reliable, depth 10), one per tracked image: the
  image's header and per target its id, state (``tracking``, ``uncertain``, ``lost``), score, frames since the last
  confident frame, search area factor and search region (pixels).
* service ``~/init_target`` (``stark_ros_msgs/srv/InitTarget``): ``box`` in pixels (centre + size, theta
  must be 0), ``stamp`` zero = the most recent buffered image, otherwise the buffered image with exactly
  that stamp; ``id`` = target id for the detections (empty -> ``"target"``). A new id adds a target (up to
  ``max_targets``), an existing id replaces that target. After an init on an older buffered image the node tracks
  the newest image received after it next. Bad requests get ``success=false`` and a reason in ``message``.
* service ``~/reset`` (``stark_ros_msgs/srv/Reset``): drop the target ``id``, or every target for an empty id;
  an id that is not tracked gets ``success=false``.
* publishes ``~/debug_image`` (``sensor_msgs/msg/Image``, bgr8) and ``~/debug_image/compressed`` (JPEG): the
  tracked image with box, id, score and search region drawn, the image's header; rendered only while someone
  subscribes (:mod:`stark_ros.ros.debug_image`), after the detection is published.
* publishes ``/diagnostics`` (``diagnostic_msgs/msg/DiagnosticArray``, absolute name as ROS diagnostics expect) once
  a second: one status named after the node, levels and values in :mod:`stark_ros.ros.diagnostics`.

Threads: the image callback (own callback group) only validates the message cheaply and stores it in a
ring buffer of ``frame_buffer_size`` images; a dedicated worker thread runs ``initialize``/``track`` on the
**newest** image, so images that arrive while it is busy are dropped (counted in :meth:`TrackerNode.stats`),
never queued. With ``frame_policy`` ``fresh`` (default) a newest image that itself arrived during the previous
inference is also passed over when the next one is due within 1.5 camera periods: the worker waits for it,
so each detection describes an image that did not wait (latency = delivery + inference); ``newest`` takes
it at once (more detections per second, each up to one camera period older). Services run in a second
callback group and never block the executor: ``~/init_target`` is a coroutine that awaits the worker's
result while images keep arriving. Any rclpy executor works; ``main`` uses a
:class:`rclpy.executors.SingleThreadedExecutor` (see there why). :meth:`TrackerNode.timing` splits the
latency into delivery, wait, work and ``track()``.

Parameters: :mod:`stark_ros.ros.parameters` (or ``config/tracker.yaml``). Message helpers:
:mod:`stark_ros.ros.messages`; latency statistics: :mod:`stark_ros.ros.timing`; rclpy differences between Humble,
Jazzy and Kilted: :mod:`stark_ros.ros.compat`.

Shutdown: :func:`main` lets rclpy's signal handler stop the executor and keeps any further SIGINT (a terminal
Ctrl-C under ``ros2 launch`` delivers two) from interrupting the clean-up.
"""
import collections
import dataclasses
import sys
import threading
import time

import rclpy
import torch
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.task import Future
from diagnostic_msgs.msg import DiagnosticArray
from stark_ros_msgs.msg import TargetStatusArray
from stark_ros_msgs.srv import InitTarget, Reset
from vision_msgs.msg import Detection2D, Detection2DArray

from stark_ros.allocator import tune_allocator
from stark_ros.cpu import inference_threads
from stark_ros.errors import CheckpointError, InvalidBoxError, InvalidImageError
from stark_ros.model.default_model import SYNTHETIC
from stark_ros.ros import compat, diagnostics
from stark_ros.ros.debug_image import DebugImagePublisher
from stark_ros.ros.image_input import image_input, input_topic
from stark_ros.ros.jobs import Frame, InitJob
from stark_ros.ros.messages import bbox_to_xywh, box_outside_error, format_stamp_ns, init_box_error, stamp_to_ns
from stark_ros.ros.parameters import DIAGNOSTICS_PARAMS, MONITOR_PARAMS, TRACKER_PARAMS, change_error, \
    declare_parameters, frame_policy_error, monitor_params, tracker_params
from stark_ros.ros.targets import TargetRegistry, make_outputs
from stark_ros.ros.timing import LatencyWindow, RateWindow, format_summary
from stark_ros.tracker.multi_tracker import MultiTracker, TooManyTargetsError
from stark_ros.tracker.target_state import TargetMonitor

NODE_NAME = 'stark_tracker'

#: Score published for trackers without a score head (S50); see the module docstring.
SCORE_WITHOUT_SCORE_HEAD = 1.0

#: Target id used when an ``~/init_target`` request leaves ``id`` empty.
DEFAULT_TARGET_ID = 'target'

#: How long ``~/init_target`` waits for the worker's verdict, seconds (the worker may be inside a
#: ``track`` call, about 0.2 s for ST50 on a 2-core CPU).
INIT_TIMEOUT_SEC = 15.0

#: Period of the INFO summary of frame counters, seconds.
STATS_PERIOD_SEC = 30.0
#: Tracked frames kept for :meth:`TrackerNode.timing`.
TIMING_WINDOW = 300

#: Backends whose engine takes its own thread count (torch's is process-wide: ``torch.set_num_threads``).
_ENGINE_THREAD_BACKENDS = ('openvino', 'onnxruntime')


class TrackerNode(Node):
    """The ``stark_tracker`` node (see the module docstring for topics, services and parameters).

    Args:
        tracker: optional ready-made :class:`stark_ros.tracker.StarkTracker` (or subclass; every target uses its
            network and class) or :class:`~stark_ros.tracker.multi_tracker.MultiTracker`; when None (normal use) it
            is built from the ``checkpoint``/``variant``/``device`` parameters.
        **kwargs: passed to :class:`rclpy.node.Node` (``context``, ``namespace``, ``parameter_overrides``, ...).

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        ValueError: bad ``variant``/``device`` or inconsistent tracker parameters.
    """

    def __init__(self, tracker=None, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        try:
            declare_parameters(self)
            self._frame_policy = self.get_parameter('frame_policy').value
            if frame_policy_error(self._frame_policy):
                raise ValueError(frame_policy_error(self._frame_policy))
            self._input = image_input(self.get_parameter('image_transport').value)
            # tracker parameters in force for the next init (kept here: on Humble they are applied before rclpy
            # stores them, see stark_ros.ros.compat)
            self._param_values = {name: self.get_parameter(name).value for name in TRACKER_PARAMS}
            self._tracker_params = tracker_params(self._param_values)
            self._monitor_values = {name: self.get_parameter(name).value for name in MONITOR_PARAMS}
            self._monitor_params = monitor_params(self._monitor_values)
            single = tracker if tracker is not None else self._build_tracker()
            if isinstance(single, MultiTracker):
                single.max_targets = self.get_parameter('max_targets').value
                single.monitor_factory = self._new_monitor
            else:
                single = MultiTracker(single, self.get_parameter('max_targets').value,
                                      monitor_factory=self._new_monitor)
            self._tracker = single
            check = getattr(self._tracker, 'check_params', None)
            if check is not None:
                check(self._tracker_params)
        except Exception:
            self.destroy_node()
            raise
        self._class_id = self.get_parameter('class_id').value
        self._publish_when_lost = self.get_parameter('publish_when_lost').value
        self._diag_limits = diagnostics.Thresholds(**{field: self.get_parameter(name).value
                                                      for name, field in DIAGNOSTICS_PARAMS.items()})

        # State shared by the callbacks and the worker, guarded by _cond's lock.
        self._cond = threading.Condition()
        self._frames = collections.deque(maxlen=self.get_parameter('frame_buffer_size').value)
        self._next_seq = 1
        self._init_job = None
        self._targets = TargetRegistry(self.get_parameter('max_targets').value)   # ids tracked
        self._last_seq = 0              # seq of the last frame initialised on / tracked
        self._params_dirty = False
        self._monitor_dirty = False     # target-state parameters changed (the worker hands them to the monitors)
        self._stop = False
        self._busy = False              # worker inside initialize/track
        self._idle_since = 0.0          # monotonic time the worker last finished a job
        self._period = None             # smoothed interval between images, seconds
        self._counts = collections.Counter()
        self._timings = LatencyWindow(TIMING_WINDOW)   # per tracked frame, see timing()
        self._publisher_seq = {}        # publisher gid -> last publication sequence number seen
        self._last_summary = collections.Counter()
        self._rates = RateWindow(diagnostics.WINDOW_SEC)   # counters over time, for /diagnostics
        self._last_arrived = None       # monotonic time of the last image
        self._last_result = None        # (box, score) of the first target's last detection

        compat.add_parameter_callbacks(self, self._validate_parameters, self._apply_parameters)

        self._image_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        image_qos = QoSProfile(depth=1, history=qos_profile_sensor_data.history,
                               reliability=qos_profile_sensor_data.reliability,
                               durability=qos_profile_sensor_data.durability)
        self._detection_pub = self.create_publisher(Detection2D, 'detection', 10)
        self._detections_pub = self.create_publisher(Detection2DArray, 'detections', 10)
        self._status_pub = self.create_publisher(TargetStatusArray, 'status', 10)
        self._image_sub = compat.create_subscription_with_info(
            self, self._input.message_class, input_topic(self, self._input.transport), self._on_image, image_qos,
            callback_group=self._image_group)
        self._init_srv = self.create_service(InitTarget, '~/init_target', self._on_init_target,
                                             callback_group=self._service_group)
        self._reset_srv = self.create_service(Reset, '~/reset', self._on_reset,
                                              callback_group=self._service_group)
        self._stats_timer = self.create_timer(STATS_PERIOD_SEC, self._log_summary)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._debug = DebugImagePublisher(self)
        self._diag_timer = self.create_timer(diagnostics.PERIOD_SEC, self._publish_diagnostics)

        self._worker = threading.Thread(target=self._worker_loop, name='stark_tracker_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            'STARK %s on %s ready: image topic %s, detections on %s, init service %s'
            % (getattr(self._tracker, 'variant', '?'), getattr(self._tracker, 'device', '?'),
               self._image_sub.topic_name, self._detection_pub.topic_name, self._init_srv.srv_name))

    # ------------------------------------------------------------------ parameters
    def _new_monitor(self):
        """A target-state machine for a new target, with the parameters in force (worker thread)."""
        return TargetMonitor(self._monitor_params)

    def _build_tracker(self):
        from stark_ros.tracker import StarkTracker
        checkpoint = self.get_parameter('checkpoint').value
        variant = self.get_parameter('variant').value
        device = self.get_parameter('device').value
        if checkpoint == SYNTHETIC:
            self.get_logger().warning(
                '*** checkpoint is "synthetic": using SYNTHETIC random weights (seed 0). The published boxes are '
                'MEANINGLESS; leave checkpoint empty (the shipped model) or give a STARK .pth.tar file. ***')
        from stark_ros.backends import resolve_backend
        requested = self.get_parameter('backend').value
        precision = self.get_parameter('precision').value
        backend = resolve_backend(requested, device, precision)     # 'auto': the fastest exact engine installed
        threads = inference_threads(self.get_parameter('num_threads').value)
        torch.set_num_threads(threads)
        options = {'threads': threads} if backend in _ENGINE_THREAD_BACKENDS else {}
        started = time.monotonic()
        tracker = StarkTracker.from_checkpoint(checkpoint=checkpoint, variant=variant, device=device,
                                               params=self._tracker_params, backend=backend,
                                               precision=precision, **options)
        loaded = time.monotonic() - started
        warm = tracker.warm_up()    # the first real frame then runs at full speed
        auto = requested.strip().lower() == 'auto'
        # a template_size change the auto-chosen engine refuses, but torch would take (not Lightning's table)
        self._backend_note = ''
        if auto and backend in _ENGINE_THREAD_BACKENDS and tracker.variant != 'lightning':
            self._backend_note = (" (backend 'auto' chose %s, whose graphs are compiled for the start-up size; set "
                                  "backend to torch or torch-fast to change template_size while running)" % backend)
        self.get_logger().info('loaded STARK %s (%s) on backend %s%s, %s, in %.1f s, warmed up in %.1f s, '
                               '%d inference thread(s)%s'
                               % (tracker.variant, tracker.info.get('checkpoint'), backend,
                                  ' (auto)' if auto else '', tracker.info.get('precision', precision),
                                  loaded, warm, threads,
                                  '' if tracker.has_score_head else
                                  '; no score head: detections carry score %.1f' % SCORE_WITHOUT_SCORE_HEAD))
        return tracker

    def _validate_parameters(self, params):
        """Accept or refuse a set of changes (ranges and read-only are enforced by rclpy from the descriptors)."""
        with self._cond:
            current = dict(self._param_values)
            monitor = dict(self._monitor_values)
        reason = change_error({p.name: p.value for p in params}, current, self._tracker, monitor)
        if reason and 'template_size' in reason and getattr(self, '_backend_note', ''):
            reason += self._backend_note
        return SetParametersResult(successful=reason is None, reason=reason or '')

    def _apply_parameters(self, params):
        """Take accepted changes into use: tracker parameters at the next init, the others now."""
        with self._cond:
            for p in params:
                if p.name in TRACKER_PARAMS:
                    self._param_values[p.name] = p.value
                    self._params_dirty = True
                elif p.name in MONITOR_PARAMS:
                    self._monitor_values[p.name] = p.value
                    self._monitor_dirty = True
                elif p.name == 'max_targets':
                    self._targets.max_targets = p.value     # the node's check (under the lock)
                    self._tracker.max_targets = p.value     # the tracker's own (an int; read by the worker)
                elif p.name == 'publish_when_lost':
                    self._publish_when_lost = p.value
                elif p.name == 'class_id':
                    self._class_id = p.value
                elif p.name == 'frame_buffer_size' and p.value != self._frames.maxlen:
                    self._frames = collections.deque(self._frames, maxlen=p.value)
                elif p.name == 'frame_policy':
                    self._frame_policy = p.value
                elif p.name in DIAGNOSTICS_PARAMS:
                    self._diag_limits = dataclasses.replace(self._diag_limits, **{DIAGNOSTICS_PARAMS[p.name]: p.value})

    # ------------------------------------------------------------------ public read-only helpers
    @property
    def tracker(self):
        """The tracker object (do not call it while the node runs; the worker owns it)."""
        return self._tracker

    def target_ids(self):
        """Ids of the tracked targets, in the order they were first initialised."""
        with self._cond:
            return self._targets.ids

    def buffered_stamps(self):
        """Stamps (integer ns) of the buffered images, oldest first."""
        with self._cond:
            return [f.stamp_ns for f in self._frames]

    def stats(self):
        """Frame counters since start, as a dict.

        ``received`` valid images, ``rejected`` malformed images (with ``image_transport`` ``compressed`` also the
        received ones whose data did not decode when the worker took them: these count in ``received`` too), ``lost`` images published but never
        delivered to the node (from gaps in the publishers' sequence numbers: the depth-1 sensor-data queue
        was overwritten before the executor took the image; counted where rclpy's MessageInfo names the
        publisher, i.e. Kilted: :data:`stark_ros.ros.compat.COUNTS_LOST`), ``processed`` frames tracked (a detection was
        published), ``dropped`` frames received after the target's image that the worker skipped because a
        newer one arrived, ``errors`` tracker failures, ``inits`` successful initialisations, ``debug_renders``
        debug images rendered (only while ``~/debug_image`` or its ``compressed`` topic has a subscriber), ``buffered``
        images in the buffer, ``tracking`` whether a target is set, ``targets`` the number of targets tracked,
        ``pending`` images received after the
        last one the worker took (it will take only the newest of them), ``busy`` whether the worker is
        inside an initialise/track call right now.
        """
        with self._cond:
            out = dict(self._counts)
            for key in ('received', 'rejected', 'lost', 'processed', 'dropped', 'errors', 'inits', 'debug_renders'):
                out.setdefault(key, 0)
            out['buffered'] = len(self._frames)
            out['tracking'] = len(self._targets) > 0
            out['targets'] = len(self._targets)
            newest = self._frames[-1].seq if self._frames else 0
            out['pending'] = max(0, newest - self._last_seq) if len(self._targets) else 0
            out['busy'] = self._busy
            return out

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg, info):
        self._count_lost(info)
        try:
            size = self._input.size(msg)
        except InvalidImageError as err:
            self._reject(msg, err)
            return
        arrived = time.monotonic()
        with self._cond:
            self._last_arrived = arrived
            if self._frames and 0.0 < arrived - self._frames[-1].arrived < 1.0:   # camera period, smoothed
                interval = arrived - self._frames[-1].arrived
                self._period = interval if self._period is None else 0.9 * self._period + 0.1 * interval
            self._frames.append(Frame(self._next_seq, stamp_to_ns(msg.header.stamp), msg,
                                       self.get_clock().now().nanoseconds, arrived, size))
            self._next_seq += 1
            self._counts['received'] += 1
            if len(self._targets):
                self._cond.notify_all()

    def _reject(self, msg, err, frame=None):
        """Count and log (throttled) a malformed image; ``frame``: its buffer entry, dropped from the buffer."""
        with self._cond:
            self._counts['rejected'] += 1
            if frame is not None and frame in self._frames:
                self._frames.remove(frame)
        self.get_logger().warning('skipping malformed image (stamp %s, frame_id %r): %s'
                                  % (format_stamp_ns(stamp_to_ns(msg.header.stamp)), msg.header.frame_id, err),
                                  throttle_duration_sec=5.0)

    def _count_lost(self, info):
        """Count images a publisher sent that never reached this callback (gaps in its sequence numbers):
        overwritten in the depth-1 subscription queue while the executor was late, or lost in transport."""
        gid = info.get('publisher_gid') if isinstance(info, dict) else None
        seq = info.get('publication_sequence_number') if isinstance(info, dict) else None
        if not gid or seq is None:
            return
        key = (gid.get('implementation_identifier'), bytes(gid.get('data') or b''))
        with self._cond:
            last = self._publisher_seq.pop(key, None)
            if last is not None and seq > last + 1:
                self._counts['lost'] += seq - last - 1
            self._publisher_seq[key] = seq  # re-inserted last: the dict is kept in recently-seen order
            if len(self._publisher_seq) > 64:
                self._publisher_seq.pop(next(iter(self._publisher_seq)))

    def _find_frame(self, stamp_ns):
        """The buffered frame to initialise on, or raise LookupError with the reason. Lock must be held."""
        if not self._frames:
            raise LookupError('no image received yet on %s' % self._image_sub.topic_name)
        if stamp_ns == 0:
            return self._frames[-1]
        for frame in reversed(self._frames):
            if frame.stamp_ns == stamp_ns:
                return frame
        stamps = [f.stamp_ns for f in self._frames]
        raise LookupError('no buffered image has stamp %s; the buffer holds %d image(s) with stamps from %s to %s '
                          '(frame_buffer_size=%d)' % (format_stamp_ns(stamp_ns), len(stamps),
                                                      format_stamp_ns(min(stamps)), format_stamp_ns(max(stamps)),
                                                      self._frames.maxlen))

    async def _on_init_target(self, request, response):
        """``~/init_target``: validate, hand the job to the worker and await it without blocking the executor."""
        response.success = False
        response.message = init_box_error(request.box) or ''
        if response.message:
            return self._init_failed(response)
        x, y, w, h = bbox_to_xywh(request.box)
        with self._cond:
            try:
                frame = self._find_frame(stamp_to_ns(request.stamp))
            except LookupError as err:
                response.message = str(err)
                return self._init_failed(response)
        response.message = box_outside_error((x, y, w, h), frame.width, frame.height) or ''
        if response.message:
            return self._init_failed(response)

        future = Future(executor=self.executor)
        # a done callback makes set_result (from the worker thread) schedule a task, which wakes the executor
        future.add_done_callback(lambda _future: None)
        job = InitJob(frame, (x, y, w, h), request.id or DEFAULT_TARGET_ID, future)
        timeout = self.create_timer(INIT_TIMEOUT_SEC, lambda: self._init_timeout(job))
        with self._cond:
            if self._init_job is not None:  # cannot happen with one service group; be safe anyway
                self._init_job.cancelled = True
                self._init_job.finish('superseded by a newer init_target request')
            self._init_job = job
            self._cond.notify_all()
        try:
            await future                # the executor keeps taking images meanwhile
        finally:
            self.destroy_timer(timeout)
        response.success = job.success
        response.message = job.message
        if not job.success:
            return self._init_failed(response)
        self.get_logger().info(job.message)
        return response

    def _init_timeout(self, job):
        """``INIT_TIMEOUT_SEC`` after an init request: give up if the worker has not started it."""
        with self._cond:
            if job.started or job.done.is_set():
                return
            job.cancelled = True
            if self._init_job is job:
                self._init_job = None
        job.finish('tracker busy: initialisation not started within %.0f s' % INIT_TIMEOUT_SEC)

    def _init_failed(self, response):
        self.get_logger().warning('init_target rejected: %s' % response.message)
        return response

    def _on_reset(self, request, response):
        """``~/reset``: drop one target by id, or all for an empty id (:meth:`TargetRegistry.reset`)."""
        with self._cond:
            response.success, response.message = self._targets.reset(request.id)
            if not len(self._targets):
                self._last_result = None
        if response.success:
            self.get_logger().info(response.message)
        else:
            self.get_logger().warning('reset rejected: %s' % response.message)
        return response

    def timing(self, last=None):
        """Where the latency of the last ``last`` tracked frames (default and at most ``TIMING_WINDOW``) went, ms.

        Returns ``{'frames': n, 'delivery': (p50, p95), 'wait': (p50, p95), 'work': (p50, p95),
        'track': (p50, p95)}`` with ``delivery`` = image stamp -> the node's image callback (camera driver, DDS,
        executor), ``wait`` = callback -> the worker took the frame (the worker was busy with the previous one),
        ``work`` = conversion + ``track()`` + publishing, ``track`` = the ``track()`` call alone (the tracker's
        own time, under the node's load). Stamps and arrival use the node's clock (ROS time), so ``delivery`` is
        meaningful when the camera stamps with the same clock. Empty dict before the first frame.
        """
        with self._cond:
            return self._timings.summary(last)

    def _log_summary(self):
        stats = self.stats()
        if stats['received'] == self._last_summary['received']:
            return
        delta = {k: stats[k] - self._last_summary[k] for k in ('received', 'processed', 'dropped', 'lost',
                                                                'rejected', 'errors')}
        self._last_summary.update({k: stats[k] for k in delta})
        self.get_logger().info(self._summary('last %.0f s' % STATS_PERIOD_SEC, delta, stats['tracking']))

    def _summary(self, period, counts, tracking):
        return format_summary(period, counts, tracking, self.timing())

    def _publish_diagnostics(self):
        """Timer (1 Hz): one ``DiagnosticArray`` on ``/diagnostics`` (:mod:`stark_ros.ros.diagnostics`)."""
        stats = self.stats()
        now = time.monotonic()
        with self._cond:
            self._rates.add(now, {k: stats[k] for k in ('received', 'processed', 'dropped', 'rejected', 'errors')})
            rates, recent = self._rates.rates(), self._rates.deltas()
            latency = self._timings.latency_percentile(95.0, last=recent['processed']) if recent['processed'] else None
            since = None if self._last_arrived is None else now - self._last_arrived
            box, score = self._last_result if self._last_result is not None else (None, None)
            target_id, limits = ', '.join(self._targets.ids) or None, self._diag_limits
        snap = diagnostics.Snapshot(rates['received'], rates['processed'], latency, recent, stats, since, target_id,
                                    score, box, diagnostics.describe_tracker(self._tracker))
        name = '%s/%s' % (self.get_namespace().rstrip('/'), self.get_name())
        self._diag_pub.publish(diagnostics.make_diagnostics(name, str(getattr(self._tracker, 'device', '')), snap,
                                                            limits, self.get_clock().now().to_msg()))

    # ------------------------------------------------------------------ worker
    def _worker_loop(self):
        while True:
            with self._cond:
                waited_for = None
                while True:
                    while not self._stop and self._init_job is None and not self._has_work():
                        self._cond.wait()
                    if self._stop or self._init_job is not None or self._frame_policy != 'fresh':
                        break
                    newest = self._frames[-1]
                    if newest.seq == waited_for or newest.arrived >= self._idle_since or self._period is None:
                        break
                    # the newest image arrived while the worker was busy: wait for the next one
                    waited_for = newest.seq
                    self._cond.wait(max(0.0, newest.arrived + 1.5 * self._period - time.monotonic()))
                if self._stop:
                    return
                self._busy = True
                job, self._init_job = self._init_job, None
                if job is not None:
                    job.started = True
                    params_dirty, self._params_dirty = self._params_dirty, False
                else:
                    frame = self._frames[-1]
                    self._counts['dropped'] += frame.seq - self._last_seq - 1
                    self._last_seq = frame.seq
                    targets = self._targets.snapshot()
            try:
                if job is not None:
                    self._run_init(job, params_dirty)
                else:
                    self._run_track(frame, targets)
            except Exception as err:  # never let the worker die
                self.get_logger().error('tracker worker: unexpected %s: %s' % (type(err).__name__, err),
                                        throttle_duration_sec=5.0)
                if job is not None and not job.done.is_set():
                    job.finish('internal error: %s: %s' % (type(err).__name__, err))
                elif job is None:
                    with self._cond:
                        self._counts['errors'] += 1
            finally:
                with self._cond:
                    self._busy = False
                    self._idle_since = time.monotonic()

    def _has_work(self):
        return len(self._targets) > 0 and bool(self._frames) and self._frames[-1].seq > self._last_seq

    def _run_init(self, job, params_dirty):
        if job.cancelled:
            return
        if params_dirty:
            with self._cond:
                values = dict(self._param_values)
            self._tracker_params = tracker_params(values)
            self._apply_tracker_params(self._tracker_params)
        frame = job.frame
        with self._cond:
            self._targets.sync(self._tracker)       # ids reset since the last job leave the tracker
            job.message = self._targets.add_error(job.target_id) or ''
        if job.message:
            job.finish()
            return
        try:
            rgb = self._input.to_rgb(frame.msg)
            self._tracker.add(job.target_id, rgb, job.box_xywh)
        except (InvalidBoxError, InvalidImageError, TooManyTargetsError) as err:
            job.message = 'tracker rejected the request: %s' % err
            job.finish()
            return
        except Exception as err:
            job.message = ('tracker failed to initialise target %r (%s: %s); targets unchanged'
                           % (job.target_id, type(err).__name__, err))
            job.finish()
            return
        with self._cond:
            self._targets.add(job.target_id)
            self._last_seq = frame.seq
            self._counts['inits'] += 1
            newer = self._frames[-1].seq - frame.seq if self._frames else 0
            count = len(self._targets)
            self._cond.notify_all()
        x, y, w, h = job.box_xywh
        job.success = True
        job.message = ('tracking target %r from image stamp %s (%d x %d), box x %.1f y %.1f w %.1f h %.1f px; %d '
                       'target(s) tracked%s'
                       % (job.target_id, format_stamp_ns(frame.stamp_ns), frame.width, frame.height,
                          x, y, w, h, count, '; %d newer image(s) buffered' % newer if newer else ''))
        job.finish()

    def _apply_tracker_params(self, params):
        """Hand changed TrackerParams to the tracker (worker thread, between frames): targets added from now on."""
        self._tracker.params = params

    def _sync_targets(self):
        """Worker thread, before tracking: drop reset ids from the tracker, hand changed target-state parameters
        to every target's monitor."""
        with self._cond:
            self._targets.sync(self._tracker)
            dirty, self._monitor_dirty = self._monitor_dirty, False
            if dirty:
                self._monitor_params = monitor_params(self._monitor_values)
        if dirty:
            for target_id in self._tracker.ids:
                monitor = self._tracker.target(target_id).monitor
                if monitor is not None:
                    monitor.params = self._monitor_params

    def _run_track(self, frame, targets):
        """Track every target of ``targets`` (``{id: generation}`` when the frame was taken) into ``frame`` and
        publish the results of those still current (not reset or re-initialised meanwhile)."""
        started = time.perf_counter()
        started_ns = self.get_clock().now().nanoseconds
        try:
            rgb = self._input.to_rgb(frame.msg)
        except InvalidImageError as err:   # compressed data that do not decode: as a malformed image
            self._reject(frame.msg, err, frame)
            return
        try:
            self._sync_targets()
            track_started = time.perf_counter()
            results = self._tracker.track(rgb, ids=targets)
            track_ms = 1000.0 * (time.perf_counter() - track_started)
        except Exception as err:
            with self._cond:
                self._counts['errors'] += 1
            self.get_logger().error('tracking failed on image stamp %s: %s: %s'
                                    % (format_stamp_ns(frame.stamp_ns), type(err).__name__, err),
                                    throttle_duration_sec=5.0)
            return
        with self._cond:
            results = {i: r for i, r in results.items() if self._targets.current(i, targets[i])}
            if not results:                 # every target reset while this frame was being tracked
                return
            detections, array, statuses = make_outputs(frame.msg.header, results, self._class_id,
                                                       SCORE_WITHOUT_SCORE_HEAD, self._publish_when_lost)
            self._counts['processed'] += 1
            first = next(iter(results.values()))
            self._last_result = (first.box, first.score)
            for det in detections:
                self._detection_pub.publish(det)
            self._detections_pub.publish(array)
            self._status_pub.publish(statuses)
            self._timings.append((frame.received_ns - frame.stamp_ns) / 1e6, (started_ns - frame.received_ns) / 1e6,
                                 1000.0 * (time.perf_counter() - started), track_ms)
        if self._debug.wanted():        # after the detections: never part of their latency
            self._debug.publish_many(frame.msg.header, rgb, [(r.box, i, r.score, r.search_region, r.target_state)
                                                             for i, r in results.items()])
            with self._cond:
                self._counts['debug_renders'] += 1

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self):
        """Stop the worker thread, log the totals, then destroy the node."""
        cond = getattr(self, '_cond', None)
        if cond is not None:
            if not self._stop:
                stats = self.stats()
                self.get_logger().info(self._summary('since start', stats, stats['tracking']))
            with cond:
                self._stop = True
                cond.notify_all()
                job, self._init_job = self._init_job, None
            if job is not None:
                job.finish('node shutting down')
            worker = getattr(self, '_worker', None)
            if worker is not None and worker is not threading.current_thread():
                worker.join(timeout=30.0)
        return super().destroy_node()


def main(args=None):
    """Console script ``tracker_node``: run :class:`TrackerNode` on a SingleThreadedExecutor until shutdown.

    One executor thread is enough (every callback is short; ``~/init_target`` awaits the worker) and much
    cheaper than rclpy's MultiThreadedExecutor, whose Python wait-set loop and thread hand-offs competed with
    the inference thread for the interpreter lock: at 30 Hz with STARK-Lightning, track() calls inside the node
    stalled for up to seconds (p95 latency 0.45-1.1 s against 0.027 s with one thread; bench/bench_node.py).
    """
    tune_allocator()
    compat.ignore_repeated_interrupts()     # before rclpy.init, whose SIGINT handler then calls this one
    rclpy.init(args=args)
    try:
        node = TrackerNode()
    except (CheckpointError, ValueError, ImportError) as err:
        rclpy.logging.get_logger(NODE_NAME).fatal('cannot start: %s: %s' % (type(err).__name__, err))
        rclpy.try_shutdown()
        return 1
    compat.spin_until_shutdown(node)
    return 0


if __name__ == '__main__':
    sys.exit(main())
