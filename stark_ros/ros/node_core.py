"""What the two ``stark_tracker`` nodes share: :class:`TrackerNodeCore`, a mixin for an rclpy ``Node`` or
``LifecycleNode`` holding the parameters, the frame buffer, the targets, the statistics and ``/diagnostics``, with its
image callback and services (:mod:`stark_ros.ros.node_inputs`) and its tracker thread, which also publishes
(:mod:`stark_ros.ros.node_worker`).

It creates and destroys its ROS entities in steps a node calls from its constructor
(:class:`stark_ros.ros.tracker_node.TrackerNode`: all of them at once) or from its lifecycle transitions
(:class:`stark_ros.ros.lifecycle_node.ManagedTrackerNode`):

=========================  ========================================================================================
step                       creates
=========================  ========================================================================================
:meth:`_core_init`         the parameters (declared, with descriptors) and their callbacks; the shared state. No
                           tracker, no topic, no service.
:meth:`_core_configure`    the tracker (checkpoint loaded, warmed up); checks ``frame_policy``, ``image_transport`` and
                           the tracker / target-state parameters. Raises on failure and keeps no tracker (the
                           parameter values read and the torch thread count set stay).
:meth:`_core_create_io`    the publishers ``detection``, ``detections``, ``status``, ``/diagnostics``,
                           ``~/debug_image`` (+ ``/compressed``) through the node's publisher factory, and the services
                           ``~/init_target`` and ``~/reset`` (they refuse requests while the node is not active).
:meth:`_core_start`        the image subscription, the statistics and diagnostics timers, the tracker thread.
:meth:`_core_stop`         undoes :meth:`_core_start`, and drops every target and buffered image (see there why).
:meth:`_core_destroy_io`   undoes :meth:`_core_create_io`.
:meth:`_core_release`      drops the tracker (undoes :meth:`_core_configure`).
=========================  ========================================================================================

State shared by the callbacks and the tracker thread is guarded by ``self._cond`` (a ``threading.Condition``):
the frame buffer ``_frames`` (ring buffer of :class:`~stark_ros.ros.jobs.Frame`), the pending ``_init_job``, the
targets ``_targets`` (:class:`~stark_ros.ros.targets.TargetRegistry`), the counters ``_counts``, the latency
windows, the parameter values in force, ``_active``. Only the tracker thread calls the tracker while it runs.
"""
import collections
import dataclasses
import threading
import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from diagnostic_msgs.msg import DiagnosticArray
from stark_ros_msgs.msg import TargetStatusArray
from stark_ros_msgs.srv import InitTarget, Reset
from vision_msgs.msg import Detection2D, Detection2DArray

from stark_ros.ros import compat, diagnostics
from stark_ros.ros.debug_image import DebugImagePublisher
from stark_ros.ros.image_input import image_input, input_topic
from stark_ros.ros.model_loading import load_tracker
from stark_ros.ros.node_inputs import TrackerInputs
from stark_ros.ros.node_worker import TrackerWorker
from stark_ros.ros.parameters import DIAGNOSTICS_PARAMS, MONITOR_PARAMS, TRACKER_PARAMS, change_error, \
    declare_parameters, frame_policy_error, monitor_params, tracker_params
from stark_ros.ros.targets import TargetRegistry
from stark_ros.ros.timing import LatencyWindow, RateWindow, format_summary
from stark_ros.tracker.multi_tracker import MultiTracker
from stark_ros.tracker.target_state import TargetMonitor

NODE_NAME = 'stark_tracker'

#: How long ``~/init_target`` waits for the worker's verdict, seconds (the worker may be inside a
#: ``track`` call, about 0.2 s for ST50 on a 2-core CPU).
INIT_TIMEOUT_SEC = 15.0

#: Period of the INFO summary of frame counters, seconds.
STATS_PERIOD_SEC = 30.0
#: Tracked frames kept for :meth:`TrackerNodeCore.timing`.
TIMING_WINDOW = 300


class TrackerNodeCore(TrackerInputs, TrackerWorker):
    """The tracking logic of the ``stark_tracker`` nodes; mix it in before ``rclpy.node.Node`` or
    ``rclpy.lifecycle.LifecycleNode`` and call its steps (see the module docstring)."""

    # ------------------------------------------------------------------ steps
    def _core_init(self, init_timeout_sec=INIT_TIMEOUT_SEC):
        """Declare the parameters and create the shared state (no tracker yet); call once, first.

        Args:
            init_timeout_sec: how long ``~/init_target`` waits for the tracker thread to start the job, seconds.
        """
        declare_parameters(self)
        self._init_timeout_sec = init_timeout_sec
        self._cond = threading.Condition()
        self._tracker = None
        self._input = None
        self._backend_note = ''
        self._loads = 0                 # checkpoints loaded by _core_configure
        self._active = False            # images taken and init requests served
        self._started = False           # _core_start ran at least once (the shutdown summary is then logged)
        self._worker = self._worker_stop = self._init_job = None
        self._detection_pub = self._detections_pub = self._status_pub = self._diag_pub = self._debug = None
        self._init_srv = self._reset_srv = self._image_sub = self._stats_timer = self._diag_timer = None
        # parameter values in force (kept here: on Humble they are applied before rclpy stores them, see compat)
        self._param_values = {name: self.get_parameter(name).value for name in TRACKER_PARAMS}
        self._monitor_values = {name: self.get_parameter(name).value for name in MONITOR_PARAMS}
        self._tracker_params = self._monitor_params = None
        self._frame_policy = self.get_parameter('frame_policy').value
        self._class_id = self.get_parameter('class_id').value
        self._publish_when_lost = self.get_parameter('publish_when_lost').value
        self._diag_limits = diagnostics.Thresholds(**{field: self.get_parameter(name).value
                                                      for name, field in DIAGNOSTICS_PARAMS.items()})
        self._frames = collections.deque(maxlen=self.get_parameter('frame_buffer_size').value)
        self._next_seq = 1
        self._targets = TargetRegistry(self.get_parameter('max_targets').value)   # ids tracked
        self._last_seq = 0              # seq of the last frame initialised on / tracked
        self._params_dirty = False
        self._monitor_dirty = False     # target-state parameters changed (the worker hands them to the monitors)
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
        self._target_health = {}        # target id -> diagnostics.TargetHealth at its last tracked image
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        compat.add_parameter_callbacks(self, self._validate_parameters, self._apply_parameters)

    def _core_configure(self, tracker=None):
        """Check the start-up parameters and build the tracker (:func:`~stark_ros.ros.model_loading.load_tracker`).

        Args:
            tracker: optional ready-made :class:`stark_ros.tracker.StarkTracker` (or subclass) or
                :class:`~stark_ros.tracker.multi_tracker.MultiTracker`; None loads the ``checkpoint`` parameter.
        Raises:
            CheckpointError: the checkpoint cannot be loaded.
            ValueError: bad ``frame_policy``, ``image_transport``, ``variant``, ``device`` or inconsistent tracker /
                target-state parameters.
            ImportError: the backend's package is missing.
        """
        if frame_policy_error(self._frame_policy):
            raise ValueError(frame_policy_error(self._frame_policy))
        source = image_input(self.get_parameter('image_transport').value)
        with self._cond:
            values, monitor_values = dict(self._param_values), dict(self._monitor_values)
            self._params_dirty = self._monitor_dirty = False
        params = tracker_params(values)
        self._monitor_params = monitor_params(monitor_values)
        self._tracker_params = params
        note = None
        if tracker is None:
            tracker, note = load_tracker(self, params)
            self._loads += 1
        max_targets = self.get_parameter('max_targets').value
        if isinstance(tracker, MultiTracker):
            tracker.max_targets = max_targets
            tracker.monitor_factory = self._new_monitor
        else:
            tracker = MultiTracker(tracker, max_targets, monitor_factory=self._new_monitor)
        if note is not None and max_targets > 1 and getattr(tracker, 'batch', False):
            # loaded here: warm the batched path too (openvino compiles its dynamic-batch model on the first call)
            self.get_logger().info('batched path (several targets) warmed up in %.1f s' % tracker.warm_up_batch())
        check = getattr(tracker, 'check_params', None)
        if check is not None:
            check(params)
        self._input, self._backend_note, self._tracker = source, note or '', tracker

    def _core_create_io(self, create_publisher):
        """Create the publishers with ``create_publisher(msg_type, topic, qos_depth)`` (the node's
        ``create_publisher`` or ``create_lifecycle_publisher``), the two services, and ``/diagnostics`` with its 1 Hz
        timer (a plain publisher in either node: a configured managed node reports ``inactive`` while it is, so a
        diagnostic aggregator does not show it as stale)."""
        self._detection_pub = create_publisher(Detection2D, 'detection', 10)
        self._detections_pub = create_publisher(Detection2DArray, 'detections', 10)
        self._status_pub = create_publisher(TargetStatusArray, 'status', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diag_timer = self.create_timer(diagnostics.PERIOD_SEC, self._publish_diagnostics)
        self._debug = DebugImagePublisher(self, create_publisher=create_publisher)
        self._init_srv = self.create_service(InitTarget, '~/init_target', self._on_init_target,
                                             callback_group=self._service_group)
        self._reset_srv = self.create_service(Reset, '~/reset', self._on_reset, callback_group=self._service_group)

    def _core_start(self):
        """Subscribe to the images, start the timers and the tracker thread: detections flow.

        Raises:
            RuntimeError: the tracker thread of the last start is still busy (it did not stop when asked); nothing
                is started.
        """
        if self._worker_busy():
            raise RuntimeError('the tracker thread of the last activation is still busy; try again later')
        image_qos = QoSProfile(depth=1, history=qos_profile_sensor_data.history,
                               reliability=qos_profile_sensor_data.reliability,
                               durability=qos_profile_sensor_data.durability)
        with self._cond:
            self._active = True
        self._started = True
        self._start_worker()
        self._image_sub = compat.create_subscription_with_info(
            self, self._input.message_class, input_topic(self, self._input.transport), self._on_image, image_qos,
            callback_group=self._image_group)
        self._stats_timer = self.create_timer(STATS_PERIOD_SEC, self._log_summary)
        self.get_logger().info(
            'STARK %s on %s ready: image topic %s, detections on %s, init service %s'
            % (getattr(self._tracker, 'variant', '?'), getattr(self._tracker, 'device', '?'),
               self._image_sub.topic_name, self._detection_pub.topic_name, self._init_srv.srv_name))

    def _core_stop(self, reason):
        """Undo :meth:`_core_start` and drop every target and buffered image (the tracker stays loaded).

        Targets are dropped because tracking resumes from the last box: after a pause the object has moved by an
        unknown amount, and images buffered before the pause are not the scene any more. A pending
        ``~/init_target`` is answered with ``reason``. Safe to call when not started.
        """
        with self._cond:
            self._active = False
        if self._stats_timer is not None:
            self.destroy_timer(self._stats_timer)
        self._stats_timer = None
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
        stopped = self._stop_worker(reason)
        with self._cond:
            dropped = self._targets.reset('')[1] if len(self._targets) else ''
            if stopped and self._tracker is not None:
                self._targets.sync(self._tracker)       # the tracker thread is stopped: safe here
            self._frames.clear()
            self._publisher_seq.clear()     # the camera went on publishing: no lost-image count across the pause
            self._period = self._last_arrived = self._last_result = None
            self._target_health.clear()
        if dropped:
            self.get_logger().info('%s (%s)' % (dropped, reason))

    def _core_destroy_io(self, destroy_publisher):
        """Undo :meth:`_core_create_io`; ``destroy_publisher``: the node's ``destroy_publisher`` or
        ``destroy_lifecycle_publisher``."""
        for service in (self._init_srv, self._reset_srv):
            if service is not None:
                self.destroy_service(service)
        self._init_srv = self._reset_srv = None
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
        self._diag_timer = None
        for publisher in (self._detection_pub, self._detections_pub, self._status_pub):
            if publisher is not None:
                destroy_publisher(publisher)
        if self._debug is not None:
            self._debug.close(destroy_publisher)
        self._detection_pub = self._detections_pub = self._status_pub = self._diag_pub = self._debug = None

    def _core_release(self):
        """Drop the tracker (its network is freed once nothing else holds it)."""
        self._tracker = self._input = None
        self._backend_note = ''

    # ------------------------------------------------------------------ parameters
    def _new_monitor(self):
        """A target-state machine for a new target, with the parameters in force (worker thread)."""
        return TargetMonitor(self._monitor_params)

    def _validate_parameters(self, params):
        """Accept or refuse a set of changes (ranges and read-only are enforced by rclpy from the descriptors)."""
        with self._cond:
            current = dict(self._param_values)
            monitor = dict(self._monitor_values)
        reason = change_error({p.name: p.value for p in params}, current, self._tracker, monitor)
        if reason and 'template_size' in reason and self._backend_note:
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
                    if self._tracker is not None:
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
        """The tracker object, or None while none is loaded (do not call it while the node runs; the worker owns
        it)."""
        return self._tracker

    @property
    def load_count(self):
        """How many times this node loaded a checkpoint (a tracker handed to the constructor does not count)."""
        return self._loads

    def _fully_qualified_name(self):
        """``/<namespace>/<name>`` of the node (its diagnostics status name)."""
        return '%s/%s' % (self.get_namespace().rstrip('/'), self.get_name())

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
        received ones whose data did not decode when the worker took them: these count in ``received`` too),
        ``lost`` images published but never delivered to the node (from gaps in the publishers' sequence numbers:
        the depth-1 sensor-data queue was overwritten before the executor took the image; counted where rclpy's
        MessageInfo names the publisher, i.e. Kilted: :data:`stark_ros.ros.compat.COUNTS_LOST`), ``processed``
        frames tracked (a detection was published), ``dropped`` frames received after the target's image that the
        worker skipped because a newer one arrived, ``errors`` tracker failures, ``inits`` successful
        initialisations, ``debug_renders`` debug images rendered (only while ``~/debug_image`` or its
        ``compressed`` topic has a subscriber), ``buffered`` images in the buffer, ``tracking`` whether a target is
        set, ``targets`` the number of targets tracked, ``pending`` images received after the last one the worker
        took (it will take only the newest of them), ``busy`` whether the worker is inside an initialise/track call
        right now.
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

    # ------------------------------------------------------------------ statistics and diagnostics
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
            targets = tuple(self._target_health[i] for i in self._targets.ids if i in self._target_health)
            active = self._active
        snap = diagnostics.Snapshot(rates['received'], rates['processed'], latency, recent, stats, since, target_id,
                                    score, box, diagnostics.describe_tracker(self._tracker), targets, active)
        self._diag_pub.publish(diagnostics.make_diagnostics(self._fully_qualified_name(),
                                                            str(getattr(self._tracker, 'device', '')), snap,
                                                            limits, self.get_clock().now().to_msg()))

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self):
        """Stop the worker thread, log the totals (when it ever ran), then destroy the node."""
        if getattr(self, '_cond', None) is not None and not getattr(self, '_destroyed', False):
            self._destroyed = True
            if self._started:
                stats = self.stats()
                self.get_logger().info(self._summary('since start', stats, stats['tracking']))
            with self._cond:
                self._active = False
            self._stop_worker('node shutting down')
        return super().destroy_node()
