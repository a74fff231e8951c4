"""The ``stark_tracker`` node's inputs: the image callback (validate cheaply, buffer, count malformed and lost images)
and the services ``~/init_target`` and ``~/reset``. Part of :class:`stark_ros.ros.node_core.TrackerNodeCore` (the
state they share with the tracker thread, and the lock guarding it, are listed there).

None of them blocks the executor: the image callback only checks the message's size fields and appends it to the
ring buffer; ``~/init_target`` is a coroutine that hands the job to the tracker thread and awaits its verdict while
images keep arriving. Both services refuse requests while the node is not active (a managed node that is
inactive), with the reason in ``message``.
"""
import time

from rclpy.task import Future

from stark_ros.errors import InvalidImageError
from stark_ros.ros.jobs import Frame, InitJob
from stark_ros.ros.messages import bbox_to_xywh, box_outside_error, format_stamp_ns, init_box_error, stamp_to_ns

#: Target id used when an ``~/init_target`` request leaves ``id`` empty.
DEFAULT_TARGET_ID = 'target'


class TrackerInputs:
    """Mixin of :class:`~stark_ros.ros.node_core.TrackerNodeCore`: image callback and services."""

    # ------------------------------------------------------------------ images
    def _on_image(self, msg, info):
        """Image callback: validate cheaply and buffer (never blocks; the worker does the work)."""
        if not self._active:
            return
        self._count_lost(info)
        try:
            size = self._input.size(msg)
        except InvalidImageError as err:
            self._reject(msg, err)
            return
        arrived = time.monotonic()
        with self._cond:
            if not self._active:        # stopped while this image was being checked
                return
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

    # ------------------------------------------------------------------ services
    def _inactive_error(self):
        """Why a service request is refused now ('' while the node is active)."""
        if self._active:
            return ''
        name = self._fully_qualified_name()
        return 'node %s is not active: it takes no images; activate it first (ros2 lifecycle set %s activate)' % (
            name, name)

    def _find_frame(self, stamp_ns):
        """The buffered frame to initialise on, or raise LookupError with the reason. Lock must be held."""
        if not self._frames:
            topic = self._image_sub.topic_name if self._image_sub is not None else 'image'
            raise LookupError('no image received yet on %s' % topic)
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
        response.message = self._inactive_error() or init_box_error(request.box) or ''
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
        timeout = self.create_timer(self._init_timeout_sec, lambda: self._init_timeout(job))
        with self._cond:
            if self._init_job is not None:  # cannot happen with one service group; be safe anyway
                self._init_job.cancelled = True
                self._init_job.finish('superseded by a newer init_target request')
            if self._active:
                self._init_job = job
                self._cond.notify_all()
            else:                           # stopped while this request was being checked
                job.finish(self._inactive_error())
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
        """``init_timeout_sec`` after an init request: give up if the worker has not started it."""
        with self._cond:
            if job.started or job.done.is_set():
                return
            job.cancelled = True
            if self._init_job is job:
                self._init_job = None
        job.finish('tracker busy: initialisation not started within %.0f s' % self._init_timeout_sec)

    def _init_failed(self, response):
        self.get_logger().warning('init_target rejected: %s' % response.message)
        return response

    def _on_reset(self, request, response):
        """``~/reset``: drop one target by id, or all for an empty id (:meth:`TargetRegistry.reset`)."""
        with self._cond:
            response.message = self._inactive_error()
            if response.message:
                response.success = False
            else:
                response.success, response.message = self._targets.reset(request.id)
                if response.success:    # the dropped targets leave the health report; last box: the next image's
                    self._last_result = None
                    kept = set(self._targets.ids)
                    self._target_health = {i: h for i, h in self._target_health.items() if i in kept}
        if response.success:
            self.get_logger().info(response.message)
        else:
            self.get_logger().warning('reset rejected: %s' % response.message)
        return response
