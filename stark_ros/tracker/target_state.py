"""A target's state from its confidence scores: ``tracking``, ``uncertain`` or ``lost``, with hysteresis in frames,
and the wider search while lost (pure Python; no rclpy, no torch).

Rules, per tracked frame with confidence score ``s`` (:class:`MonitorParams` holds the numbers):

* ``s >= uncertain_threshold`` is a *confident* frame. From ``tracking`` the state stays ``tracking``; from
  ``uncertain`` or ``lost`` it returns to ``tracking`` after ``recover_after_frames`` consecutive confident frames.
* ``lost_threshold <= s < uncertain_threshold``: ``tracking`` becomes ``uncertain`` at once; ``uncertain`` and
  ``lost`` stay (a lost target needs confident frames to come back).
* ``s < lost_threshold`` is a *low* frame: after ``lost_after_frames`` consecutive low frames the state is ``lost``;
  before that ``tracking`` becomes ``uncertain``.
* no score (a network without a score head, S50): always ``tracking``.

While ``lost`` the search area factor is multiplied by ``lost_search_growth`` per lost frame
(:attr:`TargetMonitor.search_scale`, applied by :meth:`stark_ros.tracker.StarkTracker.current_search_factor`, which
caps it where the search region covers the whole image); it returns to 1 (the normal factor) as soon as a frame is
confident. The dynamic template is refreshed only in ``tracking`` (:attr:`TargetMonitor.allows_template_update`).
"""
from dataclasses import dataclass

TRACKING = 'tracking'
UNCERTAIN = 'uncertain'
LOST = 'lost'
STATES = (TRACKING, UNCERTAIN, LOST)


@dataclass(frozen=True)
class MonitorParams:
    """Thresholds of :class:`TargetMonitor`.

    Attributes:
        uncertain_threshold: confidence score in [0, 1] at or above which a frame is confident.
        lost_threshold: confidence score in [0, uncertain_threshold] below which a frame counts towards ``lost``.
        lost_after_frames: consecutive low frames (>= 1) that make the target ``lost``.
        recover_after_frames: consecutive confident frames (>= 1) that bring an ``uncertain`` or ``lost`` target
            back to ``tracking``.
        lost_search_growth: factor (>= 1) the search area factor is multiplied by per lost frame.

    Raises:
        ValueError: a value out of range.
    """

    uncertain_threshold: float = 0.5
    lost_threshold: float = 0.25
    lost_after_frames: int = 5
    recover_after_frames: int = 3
    lost_search_growth: float = 1.5

    def __post_init__(self):
        if not 0.0 <= self.uncertain_threshold <= 1.0:
            raise ValueError('uncertain_threshold must be in [0, 1], got %r' % (self.uncertain_threshold,))
        if not 0.0 <= self.lost_threshold <= self.uncertain_threshold:
            raise ValueError('lost_threshold must be in [0, uncertain_threshold=%r], got %r'
                             % (self.uncertain_threshold, self.lost_threshold))
        for name in ('lost_after_frames', 'recover_after_frames'):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError('%s must be an integer >= 1, got %r' % (name, value))
        if not self.lost_search_growth >= 1.0:
            raise ValueError('lost_search_growth must be >= 1, got %r' % (self.lost_search_growth,))


class TargetMonitor:
    """The state machine of one target (rules in the module docstring).

    Args:
        params: :class:`MonitorParams` (may be replaced between frames through :attr:`params`).

    Attributes:
        state: 'tracking', 'uncertain' or 'lost' (starts 'tracking': the target was just given).
        frames_since_confident: tracked frames since the last confident frame (0 on a confident frame; counts from
            the initialisation, which is confident by definition).
        lost_frames: consecutive frames in ``lost`` so far (0 otherwise).
    """

    def __init__(self, params=MonitorParams()):
        self.params = params
        self.reset()

    def reset(self):
        """Back to ``tracking`` (a new initialisation)."""
        self.state = TRACKING
        self.frames_since_confident = 0
        self.lost_frames = 0
        self._low = 0
        self._confident = 0

    def observe(self, score):
        """Take one frame's confidence score (float in [0, 1], or None without a score head); return the state."""
        p = self.params
        if score is None:
            self.state, self.frames_since_confident, self.lost_frames = TRACKING, 0, 0
            return self.state
        if score >= p.uncertain_threshold:
            self.frames_since_confident = 0
            self._confident += 1
            self._low = 0
            if self.state != TRACKING and self._confident >= p.recover_after_frames:
                self.state = TRACKING
        else:
            self.frames_since_confident += 1
            self._confident = 0
            self._low = self._low + 1 if score < p.lost_threshold else 0
            if self._low >= p.lost_after_frames:
                self.state = LOST
            elif self.state == TRACKING:
                self.state = UNCERTAIN
        self.lost_frames = self.lost_frames + 1 if self.state == LOST and self._confident == 0 else 0
        return self.state

    @property
    def search_scale(self):
        """Multiplier of the search area factor for the next frame: ``lost_search_growth ** lost_frames`` while
        lost and no confident frame since (capped by the caller to the whole image), else 1."""
        if self.lost_frames == 0:
            return 1.0
        return self.params.lost_search_growth ** min(self.lost_frames, 64)

    @property
    def allows_template_update(self):
        """The dynamic template may be refreshed only while ``tracking``."""
        return self.state == TRACKING
