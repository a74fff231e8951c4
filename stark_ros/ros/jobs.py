"""What the ``stark_tracker`` node's threads hand each other: buffered images (:class:`Frame`) and ``~/init_target``
requests (:class:`InitJob`)."""
import threading


class Frame:
    """One buffered image: arrival sequence number, stamp (ns), arrival time (ns on the node's ROS clock, and
    monotonic seconds), the message and its size (pixels)."""

    __slots__ = ('seq', 'stamp_ns', 'received_ns', 'arrived', 'msg', 'width', 'height')

    def __init__(self, seq, stamp_ns, msg, received_ns=0, arrived=0.0, size=(0, 0)):
        self.seq, self.stamp_ns, self.msg, self.received_ns, self.arrived = seq, stamp_ns, msg, received_ns, arrived
        self.width, self.height = size


class InitJob:
    """An ``~/init_target`` request handed from the service callback to the worker."""

    def __init__(self, frame, box_xywh, target_id, future=None):
        self.frame, self.box_xywh, self.target_id = frame, box_xywh, target_id
        self.done = threading.Event()
        self.future = future            # rclpy Future the service coroutine awaits (None: only ``done``)
        self.started = False
        self.cancelled = False
        self.success = False
        self.message = ''

    def finish(self, message=None):
        """Mark the job done (any thread), optionally with ``message``; wakes the waiting service call."""
        if message is not None:
            self.message = message
        if self.done.is_set():
            return
        self.done.set()
        if self.future is not None and not self.future.done():
            self.future.set_result(self.success)
