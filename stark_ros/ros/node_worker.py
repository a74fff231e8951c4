"""The ``stark_tracker`` node's tracker thread: it takes ``~/init_target`` jobs and the newest buffered image, runs
``initialize`` / ``track`` and publishes the results. Part of :class:`stark_ros.ros.node_core.TrackerNodeCore`
(the state it reads and writes, and the lock guarding it, are listed there).

Frame choice (parameter ``frame_policy``): ``fresh`` (default) passes over a newest image that arrived while the
previous one was being tracked when the next one is due within 1.5 camera periods, and waits for that one, so each
detection describes an image that did not wait; ``newest`` takes the newest image at once. Images that arrive while
the thread is busy are dropped (counted), never queued.
"""
import threading
import time

from stark_ros.errors import InvalidBoxError, InvalidImageError
from stark_ros.ros import diagnostics
from stark_ros.ros.messages import format_stamp_ns
from stark_ros.ros.model_loading import SCORE_WITHOUT_SCORE_HEAD
from stark_ros.ros.parameters import monitor_params, tracker_params
from stark_ros.ros.targets import make_outputs
from stark_ros.tracker.multi_tracker import TooManyTargetsError

#: How long stopping the thread waits for a running ``initialize`` / ``track`` call, seconds.
JOIN_TIMEOUT_SEC = 30.0


class TrackerWorker:
    """Mixin of :class:`~stark_ros.ros.node_core.TrackerNodeCore`: the tracker thread (``self._worker``)."""

    def _start_worker(self):
        """Start the tracker thread (daemon, named ``stark_tracker_worker``); it runs until :meth:`_stop_worker`."""
        stop = threading.Event()
        with self._cond:
            self._worker_stop = stop
        self._worker = threading.Thread(target=self._worker_loop, args=(stop,), name='stark_tracker_worker',
                                        daemon=True)
        self._worker.start()

    def _worker_busy(self):
        """Whether a tracker thread is still running (e.g. one that did not stop within :data:`JOIN_TIMEOUT_SEC`)."""
        return self._worker is not None and self._worker.is_alive()

    def _stop_worker(self, reason):
        """Stop the tracker thread and wait for it (up to :data:`JOIN_TIMEOUT_SEC`: it finishes the
        ``initialize`` / ``track`` call it is in); a pending ``~/init_target`` job is answered with ``reason``.

        Returns:
            True when no tracker thread runs any more; False when it is still busy after the timeout (it is kept in
            ``_worker``, so no second one is started beside it).
        """
        with self._cond:
            if self._worker_stop is not None:
                self._worker_stop.set()
                self._worker_stop = None
            self._cond.notify_all()
            job, self._init_job = self._init_job, None
        if job is not None:
            job.finish(reason)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=JOIN_TIMEOUT_SEC)
            if worker.is_alive():
                self.get_logger().error('tracker thread still busy %.0f s after the stop request' % JOIN_TIMEOUT_SEC)
                return False
        self._worker = None
        return True

    def _worker_loop(self, stop):
        while True:
            with self._cond:
                waited_for = None
                while True:
                    while not stop.is_set() and self._init_job is None and not self._has_work():
                        self._cond.wait()
                    if stop.is_set() or self._init_job is not None or self._frame_policy != 'fresh':
                        break
                    newest = self._frames[-1]
                    if newest.seq == waited_for or newest.arrived >= self._idle_since or self._period is None:
                        break
                    # the newest image arrived while the worker was busy: wait for the next one
                    waited_for = newest.seq
                    self._cond.wait(max(0.0, newest.arrived + 1.5 * self._period - time.monotonic()))
                if stop.is_set():
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
            if not self._active:    # stopped (deactivate, shutdown) while the template was being computed
                job.message = ('target %r not added: the node stopped while it was being initialised'
                               % job.target_id)
                job.finish()
                return      # the tracker's copy goes at the stop's sync: the id is not in the registry
            self._targets.add(job.target_id)
            self._target_health.pop(job.target_id, None)     # a replaced target: no state until its first image
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
            self._target_health.update({i: diagnostics.TargetHealth(i, r.target_state, r.score,
                                                                    r.frames_since_confident)
                                        for i, r in results.items()})
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
