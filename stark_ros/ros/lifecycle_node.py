"""``stark_tracker`` as a managed (lifecycle) node: the same parameters, topics and services as
:class:`stark_ros.ros.tracker_node.TrackerNode` (see that module for the interfaces), created and destroyed by the
lifecycle transitions, which ``ros2 lifecycle set /stark_tracker <transition>`` or a lifecycle manager requests
through the node's ``~/change_state`` service (``~/get_state`` reports the state).

================  ===================================================================================================
state /           what exists afterwards
transition
================  ===================================================================================================
unconfigured      the parameters (declared, settable) and the lifecycle services. No model, no topic, no
(start)           ``~/init_target``.
``configure``     the model is loaded from the parameters and warmed up; publishers ``detection``, ``detections``,
                  ``status``, ``~/debug_image`` (lifecycle publishers: they send nothing until activated),
                  ``/diagnostics`` (a plain publisher, once a second from now on: OK "inactive: ..." until
                  activated) and services ``~/init_target``, ``~/reset`` (they answer ``success=false``, "not
                  active", until activated). A checkpoint that cannot be loaded (or bad start-up parameters) fails
                  the transition: the reason is logged as an ERROR and the node stays unconfigured (fix the
                  parameter, e.g. ``ros2 param set``, and configure again).
``activate``      publishers enabled, the image subscription, the 30 s statistics timer, the
                  tracker thread: images are buffered, ``~/init_target`` works, detections flow.
``deactivate``    the image subscription, summary timer and tracker thread are gone, publishers disabled (not
                  ``/diagnostics``, which says ``inactive``); **every target
                  and buffered image is dropped** (after a pause the object is no longer near its last box and the
                  buffered images are stale: initialise again after ``activate``). The model stays loaded:
                  ``activate`` does not load it again.
``cleanup``       publishers and services destroyed, the model released: back to unconfigured.
``shutdown``      from any state: everything above is stopped and released (finalized).
errors            an unexpected exception in a transition: ``on_error`` stops and releases everything and returns
                  to unconfigured.
================  ===================================================================================================

Parameters set while unconfigured take effect at ``configure`` (the read-only ones, e.g. ``checkpoint``, only through
overrides at start-up: ``--ros-args -p checkpoint:=...``); the others as in the plain node. Transitions run in the
executor thread (``configure`` blocks it while the model loads, like any lifecycle node's). Stopping the process
(SIGINT) stops the tracker thread and destroys the node without further transitions.
"""
import functools
import sys
import traceback

from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from stark_ros.ros.node_core import INIT_TIMEOUT_SEC, NODE_NAME, TrackerNodeCore
from stark_ros.ros.tracker_node import run_node


def _log_exceptions(transition):
    """Wrap a transition callback so an exception is logged with its traceback before rclpy sees it.

    rclpy turns an exception in a transition into ERROR (then ``on_error``) without logging it, so the cause would
    be lost. The exception is re-raised unchanged.
    """
    @functools.wraps(transition)
    def logged(self, state):
        try:
            return transition(self, state)
        except Exception as err:
            self.get_logger().error('%s raised %s: %s\n%s' % (transition.__name__, type(err).__name__, err,
                                                              traceback.format_exc()))
            raise
    return logged


class ManagedTrackerNode(TrackerNodeCore, LifecycleNode):
    """The ``stark_tracker`` lifecycle node (see the module docstring for what each transition does).

    Args:
        tracker: optional ready-made :class:`stark_ros.tracker.StarkTracker` or
            :class:`~stark_ros.tracker.multi_tracker.MultiTracker` that ``configure`` uses instead of loading the
            ``checkpoint`` parameter (``cleanup`` releases it, after which ``configure`` loads the checkpoint; a failed
            ``configure`` keeps it for the next).
        **kwargs: passed to :class:`rclpy.lifecycle.LifecycleNode` (``context``, ``namespace``,
            ``parameter_overrides``, ...).
    """

    def __init__(self, tracker=None, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._given_tracker = tracker
        try:
            self._core_init(init_timeout_sec=INIT_TIMEOUT_SEC)
        except Exception:
            self.destroy_node()
            raise

    @_log_exceptions
    def on_configure(self, state):
        """Load the model and create the publishers and services; FAILURE (stay unconfigured) when it cannot load."""
        tracker, self._given_tracker = self._given_tracker, None
        try:
            self._core_configure(tracker)
        except Exception as err:  # noqa: BLE001 - any load error fails the transition; the node lives on
            self._core_release()
            self._given_tracker = tracker     # the next configure tries the same tracker again
            self.get_logger().error('configure failed, node stays unconfigured: %s: %s' % (type(err).__name__, err))
            return TransitionCallbackReturn.FAILURE
        self._core_create_io(self.create_lifecycle_publisher)
        self.get_logger().info('configured (model loaded); activate to take images')
        return TransitionCallbackReturn.SUCCESS

    @_log_exceptions
    def on_activate(self, state):
        """Enable the publishers, then subscribe and start the tracker thread; FAILURE (stay inactive) while the
        tracker thread of the last activation is still busy."""
        if self._refused_while_worker_busy('activate'):
            return TransitionCallbackReturn.FAILURE
        result = super().on_activate(state)     # enables the lifecycle publishers
        if result == TransitionCallbackReturn.SUCCESS:
            self._core_start()
        return result

    @_log_exceptions
    def on_deactivate(self, state):
        """Stop taking images and tracking (targets and buffered images dropped; the model stays loaded)."""
        self._core_stop('node deactivated')
        return super().on_deactivate(state)     # disables the lifecycle publishers

    @_log_exceptions
    def on_cleanup(self, state):
        """Destroy the publishers and services, release the model; FAILURE (stay inactive) while the tracker thread
        of the last activation is still busy with it."""
        if self._refused_while_worker_busy('cleanup'):
            return TransitionCallbackReturn.FAILURE
        self._teardown()
        self.get_logger().info('cleaned up (model released)')
        return TransitionCallbackReturn.SUCCESS

    @_log_exceptions
    def on_shutdown(self, state):
        """From any state: stop, destroy and release everything."""
        self._core_stop('node shutting down')
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state):
        """After an unexpected exception in a transition: stop and release everything, back to unconfigured."""
        self.get_logger().error('transition error from state %r: stopping and releasing everything' % state.label)
        self._core_stop('node error')
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _refused_while_worker_busy(self, transition):
        """True (and an ERROR logged) while the tracker thread of the last activation still runs: ``transition``
        must fail rather than start a second thread on the tracker or release the tracker under it."""
        if not self._worker_busy():
            return False
        self.get_logger().error('%s failed: the tracker thread of the last activation is still busy' % transition)
        return True

    def _teardown(self):
        self._core_destroy_io(self.destroy_lifecycle_publisher)
        self._core_release()


def main(args=None):
    """Console script ``lifecycle_tracker_node``: run :class:`ManagedTrackerNode` (unconfigured) on a
    SingleThreadedExecutor until shutdown (why one thread: :func:`stark_ros.ros.tracker_node.main`)."""
    # the model loads later, at configure: start-up errors are parameter overrides of the wrong type or range
    return run_node(ManagedTrackerNode, (ValueError, TypeError, ParameterException), args)


if __name__ == '__main__':
    sys.exit(main())
