"""The node's targets: which ids are tracked (:class:`TargetRegistry`, shared by the service callbacks and the worker),
the ``~/reset`` logic, and the messages of one tracked image (per-target ``Detection2D``, one ``Detection2DArray``
and one ``stark_ros_msgs/TargetStatusArray``).

Threads: the registry is guarded by the node's lock (every method must be called with it held). Only the worker
thread touches the :class:`~stark_ros.tracker.multi_tracker.MultiTracker`: an id dropped by ``~/reset`` leaves the
registry at once (its detections stop, even for an image being tracked right now) and the tracker at the worker's
next job (:meth:`TargetRegistry.sync`).
"""
from vision_msgs.msg import Detection2DArray

from stark_ros.ros.messages import make_detection, xywh_to_bbox
from stark_ros.tracker.target_state import LOST, TRACKING


class TargetRegistry:
    """Target id -> generation (a number that changes when the id is (re)initialised), in the order added.

    Args:
        max_targets: largest number of ids (parameter ``max_targets``).
    """

    def __init__(self, max_targets):
        self.max_targets = max_targets
        self._ids = {}
        self._next = 1

    def __len__(self):
        return len(self._ids)

    def __contains__(self, target_id):
        return target_id in self._ids

    @property
    def ids(self):
        return list(self._ids)

    def snapshot(self):
        """``{id: generation}`` now (the worker compares it after tracking: :meth:`current`)."""
        return dict(self._ids)

    def add_error(self, target_id):
        """Why ``target_id`` cannot be (re)initialised now, or None: a new id while ``max_targets`` are tracked."""
        if target_id in self._ids or len(self._ids) < self.max_targets:
            return None
        return ('cannot add target %r: %d target(s) already tracked (max_targets=%d: %s); reset one with '
                '~/reset first, or re-initialise an existing id' % (target_id, len(self._ids), self.max_targets,
                                                                     ', '.join(self._ids)))

    def add(self, target_id):
        """Record ``target_id`` as (re)initialised; returns its new generation."""
        generation, self._next = self._next, self._next + 1
        self._ids[target_id] = generation
        return generation

    def reset(self, target_id):
        """The ``~/reset`` request: drop ``target_id`` (empty: every target).

        Returns:
            ``(success, message)``: False for an id that is not tracked.
        """
        if not target_id:
            dropped, self._ids = list(self._ids), {}
            if not dropped:
                return True, 'no target was set'
            return True, 'dropped %d target(s): %s' % (len(dropped), ', '.join(repr(i) for i in dropped))
        if self._ids.pop(target_id, None) is None:
            return False, ('no target %r is tracked (tracked: %s)'
                           % (target_id, ', '.join(repr(i) for i in self._ids) or 'none'))
        return True, 'target %r dropped' % target_id

    def current(self, target_id, generation):
        """Whether ``target_id`` is still tracked with this generation (not reset or re-initialised since)."""
        return self._ids.get(target_id) == generation

    def sync(self, tracker):
        """Drop from ``tracker`` (MultiTracker; worker thread) the ids no longer in the registry."""
        for target_id in tracker.ids:
            if target_id not in self._ids:
                tracker.remove(target_id)


def make_outputs(header, results, class_id, default_score, publish_when_lost=True):
    """The messages of one tracked image.

    Args:
        header: the image's ``std_msgs/Header`` (copied into every message).
        results: ``{id: TrackResult}`` (:meth:`MultiTracker.track`), in target order.
        class_id: ``class_id`` of every detection hypothesis.
        default_score: score published when the network has no score head (``TrackResult.score`` None).
        publish_when_lost: False to leave targets in state ``lost`` out of the detections (their status is kept).
    Returns:
        ``(detections, array, statuses)``: the per-target ``Detection2D`` list, one ``Detection2DArray`` holding
        the same detections, one ``stark_ros_msgs/TargetStatusArray``.
    """
    from stark_ros_msgs.msg import TargetStatus, TargetStatusArray
    detections = []
    statuses = TargetStatusArray(header=header)
    for target_id, result in results.items():
        score = default_score if result.score is None else result.score
        state = result.target_state or TRACKING
        if publish_when_lost or state != LOST:
            detections.append(make_detection(header, result.box, score, target_id, class_id))
        status = TargetStatus(header=header, id=target_id, state=state, score=float(score))
        status.frames_since_confident = int(result.frames_since_confident or 0)
        status.search_factor = float(result.search_factor or 0.0)
        if result.search_region is not None:
            xywh_to_bbox(result.search_region, status.search_region)
        xywh_to_bbox(result.box, status.box)
        statuses.targets.append(status)
    return detections, Detection2DArray(header=header, detections=list(detections)), statuses
