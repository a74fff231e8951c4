"""Tracker parameters, kept apart from the code (pytracking style)."""
from dataclasses import dataclass

from ..model.backbone import BACKBONE_STRIDE


@dataclass(frozen=True)
class TrackerParams:
    """Test-time parameters of the STARK tracker.

    Defaults are the official test settings (``TEST.*`` of ``experiments/stark_st2/baseline.yaml``;
    STARK_FACTS.md sections 9.4 and 11).

    Attributes:
        template_factor: search area factor of the template crop (crop side = ceil(sqrt(w*h) * factor)).
        template_size: side of the template patch fed to the network, pixels (128).
        search_factor: search area factor of the search region crop. Any value is safe for memory: crops over
            :data:`stark_ros.tracker.crop.MAX_PADDED_CROP_SIDE` pixels are sampled without a padded copy
            (:func:`stark_ros.tracker.crop.sample_target`), so a crop takes at most ``MAX_CROP_BYTES`` (48 MiB).
        search_size: side of the search region patch, pixels (320 = 20 tokens x stride 16).
        update_interval: dynamic template refresh period in frames (first tracked frame is 1).
        score_threshold: the dynamic template is refreshed only when the confidence score is strictly above this.
    """

    template_factor: float = 2.0
    template_size: int = 128
    search_factor: float = 5.0
    search_size: int = 320
    update_interval: int = 200
    score_threshold: float = 0.5

    def __post_init__(self):
        for name in ('template_factor', 'search_factor'):
            if not getattr(self, name) > 0:
                raise ValueError('%s must be > 0, got %r' % (name, getattr(self, name)))
        for name in ('template_size', 'search_size'):
            value = getattr(self, name)
            if int(value) != value or value < BACKBONE_STRIDE or value % BACKBONE_STRIDE:
                raise ValueError('%s must be a positive multiple of %d (the backbone stride), got %r'
                                 % (name, BACKBONE_STRIDE, value))
        if int(self.update_interval) != self.update_interval or self.update_interval < 1:
            raise ValueError('update_interval must be an integer >= 1, got %r' % (self.update_interval,))
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError('score_threshold must be in [0, 1], got %r' % (self.score_threshold,))
