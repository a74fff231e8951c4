"""``stark_tracker``: the ROS 2 node that runs the STARK tracker on a camera topic.

The node is wiring only: its logic, shared with the managed (lifecycle) variant
:class:`stark_ros.ros.lifecycle_node.ManagedTrackerNode`, is :class:`stark_ros.ros.node_core.TrackerNodeCore` (frame
buffer, services, publishing, statistics, diagnostics) with its tracker thread :mod:`stark_ros.ros.node_worker` and
the model loading :mod:`stark_ros.ros.model_loading`. Pixels are converted by :mod:`stark_ros.ros.image_conversion`,
tracking is :class:`stark_ros.tracker.multi_tracker.MultiTracker` (several targets by id, one batched network call
per image), the targets' ids and output messages are :mod:`stark_ros.ros.targets`, their states
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
  tracked image with every target's box (in its state's colour), id, score, state and search region drawn, the
  image's header; rendered only while someone
  subscribes (:mod:`stark_ros.ros.debug_image`), after the detection is published.
* publishes ``/diagnostics`` (``diagnostic_msgs/msg/DiagnosticArray``, absolute name as ROS diagnostics expect) once
  a second: one status named after the node, with every target's state; levels and values in
  :mod:`stark_ros.ros.diagnostics`.

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
import sys
import traceback

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.node import Node

from stark_ros.allocator import tune_allocator
from stark_ros.errors import CheckpointError
from stark_ros.ros import compat
from stark_ros.ros.model_loading import SCORE_WITHOUT_SCORE_HEAD  # noqa: F401  (documented above)
# INIT_TIMEOUT_SEC is read from this module when a node is created (a process, or a test, may change it here)
from stark_ros.ros.node_core import INIT_TIMEOUT_SEC, NODE_NAME, STATS_PERIOD_SEC, TIMING_WINDOW, \
    TrackerNodeCore  # noqa: F401
from stark_ros.ros.node_inputs import DEFAULT_TARGET_ID  # noqa: F401


class TrackerNode(TrackerNodeCore, Node):
    """The ``stark_tracker`` node (see the module docstring for topics, services and parameters).

    The constructor does everything at once (:class:`~stark_ros.ros.node_core.TrackerNodeCore`'s steps): declares
    the parameters, loads the tracker, creates the publishers and services, subscribes and starts the worker thread.
    :class:`stark_ros.ros.lifecycle_node.ManagedTrackerNode` is the same node split into lifecycle transitions.

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
            self._core_init(init_timeout_sec=INIT_TIMEOUT_SEC)
            self._core_configure(tracker)
            self._core_create_io(self.create_publisher)
            self._core_start()
        except Exception:
            self.destroy_node()
            raise


def main(args=None):
    """Console script ``tracker_node``: run :class:`TrackerNode` on a SingleThreadedExecutor until shutdown.

    One executor thread is enough (every callback is short; ``~/init_target`` awaits the worker) and much
    cheaper than rclpy's MultiThreadedExecutor, whose Python wait-set loop and thread hand-offs competed with
    the inference thread for the interpreter lock: at 30 Hz with STARK-Lightning, track() calls inside the node
    stalled for up to seconds (p95 latency 0.45-1.1 s against 0.027 s with one thread; bench/bench_node.py).
    """
    return run_node(TrackerNode, (CheckpointError, ValueError, ImportError, ParameterException), args)


def run_node(make_node, startup_errors, args=None):
    """Run a tracker node process: tune the allocator, init rclpy, create ``make_node()`` and spin it on one thread
    until shutdown (:func:`stark_ros.ros.compat.spin_until_shutdown`).

    Args:
        make_node: callable returning the node (``TrackerNode`` or ``ManagedTrackerNode``).
        startup_errors: exception types expected from bad set-up (a missing checkpoint, a bad parameter): logged
            as one FATAL line. Any other exception from ``make_node`` is logged FATAL with its traceback.
        args: rclpy command-line arguments (``None``: ``sys.argv``).

    Returns:
        The process exit code: 0 after a clean shutdown, 1 when creating the node raised.
    """
    tune_allocator()
    compat.ignore_repeated_interrupts()     # before rclpy.init, whose SIGINT handler then calls this one
    rclpy.init(args=args)
    try:
        node = make_node()
    except Exception as err:  # noqa: BLE001 - the process ends with a FATAL log line and exit code 1
        detail = '' if isinstance(err, startup_errors) else '\n' + traceback.format_exc()
        rclpy.logging.get_logger(NODE_NAME).fatal('cannot start: %s: %s%s' % (type(err).__name__, err, detail))
        rclpy.try_shutdown()
        return 1
    compat.spin_until_shutdown(node)
    return 0


if __name__ == '__main__':
    sys.exit(main())
