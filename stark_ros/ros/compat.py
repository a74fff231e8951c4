"""rclpy differences between the supported distributions, detected once at import.

The project runs on Humble (rclpy 3.3), Jazzy (rclpy 7.1) and Kilted (rclpy 9.x). It calls only rclpy APIs that
Humble has, except two Iron-and-later features used through the detected fallbacks below (the full list of calls,
each with the distribution it appeared in, is in the README, section "ROS 2 distributions"; a test checks the
project's calls against Humble's API):

* ``Node.add_post_set_parameters_callback`` (Iron+): Humble has only ``add_on_set_parameters_callback``. Without it,
  the apply step runs at the end of the validation callback, once the change is accepted.
* ``MessageInfo`` for subscription callbacks (Iron+: a callback taking two arguments gets ``(msg, info)``): Humble's
  executor calls ``callback(msg)``. Without it the callback gets ``info=None``. Counting images lost before
  delivery also needs the publisher's gid in it, which only Kilted's has (:data:`COUNTS_LOST`).

``rclpy.executors.ExternalShutdownException`` (Humble has it) is looked up with a fallback too, so that an older
rclpy fails no import.
"""
import signal

import rclpy
from rclpy import executors, subscription
from rclpy.node import Node
from rclpy.subscription import Subscription

#: rclpy has ``Node.add_post_set_parameters_callback`` (Iron, Jazzy, Kilted; not Humble).
HAS_POST_SET_PARAMETERS_CALLBACK = hasattr(Node, 'add_post_set_parameters_callback')
#: rclpy passes ``MessageInfo`` to two-argument subscription callbacks (Iron, Jazzy, Kilted; not Humble), which
#: it chooses by ``Subscription.CallbackType``.
HAS_MESSAGE_INFO = hasattr(Subscription, 'CallbackType')
#: rclpy's ``MessageInfo`` names the publisher (``publisher_gid``: Kilted; Jazzy's has sequence numbers only), which
#: counting images lost before delivery needs (sequence numbers are per publisher).
HAS_PUBLISHER_GID = 'publisher_gid' in getattr(getattr(subscription, 'MessageInfo', None), '__annotations__', {})
#: Whether the node can count images lost before delivery (``TrackerNode.stats()['lost']``).
COUNTS_LOST = HAS_MESSAGE_INFO and HAS_PUBLISHER_GID


def add_parameter_callbacks(node, validate, apply):
    """Register ``validate(params) -> SetParametersResult`` and ``apply(params)`` (called once a change is set).

    On Humble ``apply`` runs inside the validation callback after ``validate`` accepted the change (rclpy then sets
    the values right after), so it must not read the new values back with ``get_parameter``: it gets them in
    ``params``.
    """
    if HAS_POST_SET_PARAMETERS_CALLBACK:
        node.add_on_set_parameters_callback(validate)
        node.add_post_set_parameters_callback(apply)
        return

    def validate_then_apply(params):
        result = validate(params)
        if result.successful:
            apply(params)
        return result
    node.add_on_set_parameters_callback(validate_then_apply)


def create_subscription_with_info(node, msg_type, topic, callback, qos_profile, **kwargs):
    """``node.create_subscription`` for a ``callback(msg, info)``; ``info`` is rclpy's ``MessageInfo`` dict, or None
    where rclpy has none (Humble). ``kwargs`` as ``create_subscription`` (e.g. ``callback_group``)."""
    if HAS_MESSAGE_INFO:
        return node.create_subscription(msg_type, topic, callback, qos_profile, **kwargs)
    return node.create_subscription(msg_type, topic, lambda msg: callback(msg, None), qos_profile, **kwargs)


class _NeverRaised(Exception):
    """Stand-in for ``ExternalShutdownException`` where rclpy has none (its ``spin`` then just returns)."""


#: What ``Executor.spin`` raises when the context is shut down from outside (e.g. by rclpy's SIGINT handler).
ExternalShutdownException = getattr(executors, 'ExternalShutdownException', _NeverRaised)


def ignore_repeated_interrupts():
    """Make SIGINT never raise ``KeyboardInterrupt`` in this process; call it before ``rclpy.init``.

    rclpy's own SIGINT handler (installed by ``rclpy.init``, on every distribution) shuts the contexts down, which
    stops the executor, and then calls the handler that was there before it: Python's, which raised
    ``KeyboardInterrupt`` wherever the main thread was. A terminal Ctrl-C under ``ros2 launch`` delivers SIGINT twice
    (from the terminal and from launch); the second one used to land in the clean-up (``destroy_node`` joining the
    worker, the shutdown summary) and abort it. With this no-op in Python's place the first SIGINT stops the node
    through rclpy and any further one is harmless.
    """
    signal.signal(signal.SIGINT, _ignore_signal)


def _ignore_signal(signum, frame):
    pass


def ignore_interrupts_from_now_on():
    """Ignore SIGINT in the kernel for the rest of the process (the node is shutting down).

    Unlike the Python no-op of :func:`ignore_repeated_interrupts` this also holds while rclpy uninstalls its handlers
    and while the interpreter finalises (Python then resets the signals it handles to their default action, and a
    late SIGINT would kill the process with status -2, as seen with Jazzy under load).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spin_until_shutdown(node, before_destroy=None):
    """Spin ``node`` on a :class:`rclpy.executors.SingleThreadedExecutor` until rclpy shuts down, then destroy it.

    Ends quietly on SIGINT / external shutdown, and on the shutdown race of Jazzy's executor (an RCLError "the given
    context is not valid" when SIGINT shuts the context down between its ok() check and building the wait set);
    any other exception while rclpy is still up is re-raised. From the first step of the clean-up SIGINT is ignored
    (:func:`ignore_interrupts_from_now_on`), before and after rclpy uninstalls its handlers.

    Args:
        node: an rclpy node, already created in the default context (``rclpy.init`` done).
        before_destroy: optional callable run first in the clean-up (e.g. stop a web server).
    """
    executor = executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - re-raised unless it is the shutdown race above
        if rclpy.ok():
            raise
    finally:
        ignore_interrupts_from_now_on()     # a second SIGINT may come any time now, even in finalisation
        if before_destroy is not None:
            before_destroy()
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
        ignore_interrupts_from_now_on()     # again, whatever rclpy restored when it uninstalled its handlers
