"""The node's ``diagnostic_msgs/DiagnosticArray`` on ``/diagnostics``: one ``DiagnosticStatus`` per second, named
after the node, with the frame rates, the latency, the counters and every target's state (``tracking``,
``uncertain``, ``lost``, :mod:`stark_ros.tracker.target_state`), and a level from documented thresholds
(parameters ``diagnostics_*``, see :mod:`stark_ros.ros.parameters`).

Levels, first match wins (:func:`assess`):

* ERROR: a target is set and no image arrived for ``diagnostics_stale_image_sec`` seconds (camera stopped,
  topic wrong); or ``track()`` failed on an image in the last ``WINDOW_SEC`` seconds.
* WARN: while tracking, the processed rate is below ``diagnostics_min_processed_ratio`` x the input rate (the
  tracker does not keep up: images are dropped); or the end-to-end latency p95 (image stamp -> detection
  published) is above ``diagnostics_max_latency_ms``; or malformed images arrived in the window.
* OK otherwise, including while no target is set (the node is idle, waiting for ``~/init_target``), and while a
  managed node (:mod:`stark_ros.ros.lifecycle_node`) is configured but inactive (message ``inactive: ...``).

A target's state does not change the level: a lost target is a fact about the scene (the object left, or the
model lost it), not about the node's health, and a robot's diagnostic aggregator should not raise WARN whenever a
person walks out of view. The states are in the message (``2 target(s) at 25.0 Hz: 'a' tracking, 'b' lost``) and
in per-target values (``target <id> state``, ``target <id> score``, ``target <id> frames since confident``), and
on the ``status`` topic at the image rate.

A model that fails to load stops the node at start-up (FATAL log, exit status 1), before it can publish anything:
a diagnostic aggregator then reports the node's status as stale. The managed node
(:mod:`stark_ros.ros.lifecycle_node`) publishes from ``configure`` to ``cleanup`` (``inactive`` while not active);
a model that fails to load fails its ``configure`` instead, and it stays unconfigured, publishing nothing.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

#: Period of the diagnostics timer, seconds (the ROS convention: 1 Hz).
PERIOD_SEC = 1.0
#: Window of the rates and of the "recent" counters, seconds.
WINDOW_SEC = 5.0

OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = ('OK', 'WARN', 'ERROR')


@dataclass(frozen=True)
class Thresholds:
    """The ``diagnostics_*`` parameters.

    Attributes:
        min_processed_ratio: WARN below this processed / input rate while tracking (0 disables).
        max_latency_ms: WARN above this end-to-end latency p95, milliseconds (0 disables).
        stale_image_sec: ERROR when a target is set and the last image is older than this, seconds.
    """

    min_processed_ratio: float = 0.5
    max_latency_ms: float = 500.0
    stale_image_sec: float = 2.0


@dataclass(frozen=True)
class TargetHealth:
    """One target at its last tracked image.

    Attributes:
        target_id: the target's id.
        state: 'tracking', 'uncertain' or 'lost' (None: a tracker without a state machine).
        score: confidence score in [0, 1] of its last detection (None: no score head).
        frames_since_confident: tracked images since its last confident one (None: unknown).
    """

    target_id: str
    state: Optional[str] = None
    score: Optional[float] = None
    frames_since_confident: Optional[int] = None


@dataclass(frozen=True)
class Snapshot:
    """What the node knows at one diagnostics tick.

    Attributes:
        input_hz / processed_hz: images received / tracked per second over the last ``WINDOW_SEC`` s.
        latency_p95_ms: end-to-end latency p95 of the images tracked in that window, ms (None: none tracked).
        recent: counter increases over the window (``rejected``, ``errors``, ``dropped``...).
        totals: counters since start (:meth:`TrackerNode.stats`).
        since_image_sec: seconds since the last image arrived (None: no image yet).
        target_id: the target's id, or None when no target is set.
        last_score: confidence of the last detection (None: none yet, or no score head).
        last_box: (x, y, w, h) pixels of the last detection, or None.
        model: short description of the tracker (variant, backend, device).
        targets: :class:`TargetHealth` per target with a tracked image, in target order.
        active: False while a managed node is configured but not active (it takes no images).
    """

    input_hz: float
    processed_hz: float
    latency_p95_ms: object
    recent: dict
    totals: dict
    since_image_sec: object
    target_id: object
    last_score: object
    last_box: object
    model: str
    targets: Tuple[TargetHealth, ...] = ()
    active: bool = True


def describe_tracker(tracker):
    """``'<variant>, <backend> backend, <device>'`` of a tracker, for the ``model`` value."""
    info = getattr(tracker, 'info', {}) or {}
    return '%s, %s backend, %s' % (getattr(tracker, 'variant', '?'), info.get('backend', 'torch'),
                                   getattr(tracker, 'device', '?'))


def assess(snap, limits):
    """``(level, message)`` of a :class:`Snapshot` under :class:`Thresholds` (see the module docstring)."""
    if not snap.active:
        return OK, 'inactive: model loaded, taking no images (lifecycle transition activate starts it)'
    tracking = snap.target_id is not None
    if tracking and (snap.since_image_sec is None or snap.since_image_sec > limits.stale_image_sec):
        return ERROR, ('no image for %.1f s while tracking' % snap.since_image_sec if snap.since_image_sec is not None
                       else 'no image received while tracking')
    if snap.recent.get('errors', 0):
        return ERROR, 'tracker failed on %d image(s) in the last %.0f s' % (snap.recent['errors'], WINDOW_SEC)
    warnings = []
    if (tracking and limits.min_processed_ratio > 0 and snap.input_hz > 0
            and snap.processed_hz < limits.min_processed_ratio * snap.input_hz):
        warnings.append('tracking %.1f Hz of a %.1f Hz input (below %.0f%%)'
                        % (snap.processed_hz, snap.input_hz, 100 * limits.min_processed_ratio))
    if limits.max_latency_ms > 0 and snap.latency_p95_ms is not None and snap.latency_p95_ms > limits.max_latency_ms:
        warnings.append('latency p95 %.0f ms above %.0f ms' % (snap.latency_p95_ms, limits.max_latency_ms))
    if snap.recent.get('rejected', 0):
        warnings.append('%d malformed image(s) in the last %.0f s' % (snap.recent['rejected'], WINDOW_SEC))
    if warnings:
        return WARN, '; '.join(warnings)
    if not tracking:
        return OK, 'idle: no target set'
    if not snap.targets:
        return OK, 'tracking %r at %.1f Hz' % (snap.target_id, snap.processed_hz)
    return OK, '%d target(s) at %.1f Hz: %s' % (len(snap.targets), snap.processed_hz, ', '.join(
        '%r %s' % (t.target_id, t.state or 'tracking') for t in snap.targets))


def key_values(snap):
    """``[(key, value string)]`` of a :class:`Snapshot`, in the order published."""
    def number(value, fmt):
        return 'n/a' if value is None else fmt % value

    totals = snap.totals
    return [
        ('input rate (Hz)', '%.2f' % snap.input_hz),
        ('processed rate (Hz)', '%.2f' % snap.processed_hz),
        ('latency p95 (ms)', number(snap.latency_p95_ms, '%.1f')),
        ('dropped frames', str(totals.get('dropped', 0))),
        ('dropped frames (last %.0f s)' % WINDOW_SEC, str(snap.recent.get('dropped', 0))),
        ('received images', str(totals.get('received', 0))),
        ('tracked images', str(totals.get('processed', 0))),
        ('malformed images', str(totals.get('rejected', 0))),
        ('lost images', str(totals.get('lost', 0))),
        ('tracker errors', str(totals.get('errors', 0))),
        ('seconds since last image', number(snap.since_image_sec, '%.2f')),
        ('active', 'true' if snap.active else 'false'),
        ('tracking', 'true' if snap.target_id is not None else 'false'),
        ('target id', snap.target_id or ''),
        ('last score', number(snap.last_score, '%.3f')),
        ('last box (x y w h px)', '' if snap.last_box is None else '%.1f %.1f %.1f %.1f' % tuple(snap.last_box)),
        ('debug image renders', str(totals.get('debug_renders', 0))),
        ('model', snap.model),
    ] + [item for t in snap.targets for item in (
        ('target %s state' % t.target_id, t.state or 'tracking'),
        ('target %s score' % t.target_id, number(t.score, '%.3f')),
        ('target %s frames since confident' % t.target_id, number(t.frames_since_confident, '%d')))]


def make_diagnostics(name, hardware_id, snap, limits, stamp):
    """A ``diagnostic_msgs/DiagnosticArray`` holding one status ``name`` for a :class:`Snapshot`.

    Args:
        name: status name (the node's fully qualified name, as ROS diagnostics tools group by it).
        hardware_id: e.g. the inference device.
        snap: :class:`Snapshot`; limits: :class:`Thresholds`.
        stamp: ``builtin_interfaces/Time`` of the array's header.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    level, message = assess(snap, limits)
    status = DiagnosticStatus()
    status.level = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)[level]
    status.name = name
    status.message = message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=key, value=value) for key, value in key_values(snap)]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array
