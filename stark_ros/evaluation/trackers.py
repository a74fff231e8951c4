"""The trackers the evaluation runs through one runner: STARK (any checkpoint / variant / backend / precision the
node accepts), OpenCV's CSRT and KCF (what a robotics user would pick instead) and ``static``, which holds the
first-frame box on every frame (the "does the tracker beat doing nothing" baseline).

A tracker is named on the command line by a spec ``[label=]kind[:key=value[:key=value...]]``, e.g. ``csrt``,
``stark``, ``lite=stark:variant=lightning:backend=openvino``. Every adapter has ``initialize(image, box)`` and
``track(image) -> box`` and ``score``, the confidence score of the last ``track`` call (a float in [0, 1], or None
for a tracker without one); boxes are ``(x, y, w, h)`` in pixels; images are (H, W, 3) uint8, BGR for the OpenCV
trackers (``bgr = True``) and RGB for STARK and ``static``.
"""
import math
from dataclasses import dataclass
from typing import Tuple

import cv2

from ..errors import StarkError

KINDS = ('static', 'csrt', 'kcf', 'stark')
#: options a ``stark`` spec accepts (keys as on the command line, ``-`` or ``_``), with their types
STARK_OPTIONS = {'checkpoint': str, 'variant': str, 'device': str, 'backend': str, 'precision': str,
                 'update_interval': int, 'score_threshold': float, 'seed': int, 'redetection': str}
#: values of the ``redetection`` option: the node's target-state monitor with its wider search while lost (``on``),
#: the monitor without the wider search (``off``); without the option STARK runs as released (no monitor).
REDETECTION_MODES = ('on', 'off')


class StaticTracker:
    """The "doing nothing" baseline: returns the init box ``(x, y, w, h)`` (pixels, unchanged, not rounded) on every
    frame and never looks at the images. Its scores are what any tracker must beat to be worth running; it has no
    confidence score (``score`` is None).

    Raises (on ``initialize``):
        StarkError: an init box that is not 4 finite numbers with a positive width and height.
    """

    bgr = False
    score = None
    description = 'static (the frame-0 box on every frame)'

    def __init__(self):
        self._box = None

    def initialize(self, image, box):
        values = tuple(float(v) for v in box)
        if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
            raise StarkError('init box %r is not x, y, w, h with a positive size' % (tuple(box),))
        self._box = values

    def track(self, image):
        return self._box


class OpenCVTracker:
    """OpenCV's CSRT or KCF with default parameters (``opencv-contrib-python-headless``).

    The init box is rounded to integers (OpenCV takes an integer rectangle); when ``update()`` reports failure the
    previous box is kept (``../shared/eval/README.md`` measured them the same way).

    Raises (on construction):
        StarkError: this OpenCV build has no such tracker (the plain ``opencv-python`` lacks the contrib modules).
    """

    bgr = True
    score = None

    def __init__(self, kind):
        factory = getattr(cv2, {'csrt': 'TrackerCSRT_create', 'kcf': 'TrackerKCF_create'}[kind], None)
        if factory is None:
            raise StarkError('OpenCV %s %s has no %s tracker: install opencv-contrib-python-headless (see '
                             'requirements.txt)' % (cv2.__version__, cv2.__file__, kind.upper()))
        self._factory = factory
        self._tracker = None
        self._box = None
        self.description = 'OpenCV %s %s' % (cv2.__version__, kind.upper())

    def initialize(self, image, box):
        rect = tuple(int(round(v)) for v in box)
        if rect[2] <= 0 or rect[3] <= 0:
            raise StarkError('init box %r is empty after rounding to integers' % (tuple(box),))
        self._tracker = self._factory()
        self._tracker.init(image, rect)
        self._box = tuple(float(v) for v in box)

    def track(self, image):
        ok, rect = self._tracker.update(image)
        if ok:
            self._box = tuple(float(v) for v in rect)
        return self._box


class StarkAdapter:
    """:class:`stark_ros.tracker.StarkTracker` built by ``StarkTracker.from_checkpoint`` (options passed through:
    the variant string is never interpreted here). Warmed up once, so the first sequence's speed is not skewed.
    ``backend='auto'`` (the default) is resolved by :func:`stark_ros.backends.resolve_backend`; ``description`` (the
    line the evaluation logs for the tracker) names the engine used.

    ``redetection`` (None, ``'on'`` or ``'off'``): None runs STARK as released. ``'on'`` gives the tracker the
    node's per-target state machine (:class:`~stark_ros.tracker.target_state.TargetMonitor`, default
    :class:`~stark_ros.tracker.target_state.MonitorParams`, reset at every ``initialize``): the dynamic template is
    refreshed only while ``tracking`` and the search region grows while ``lost``; ``'off'`` is the same state machine
    without the growth (``lost_search_growth`` 1), so the two isolate what re-detection adds.

    Raises (on construction):
        CheckpointError / ValueError: as ``StarkTracker.from_checkpoint``; ValueError: an unknown ``redetection``.
    """

    bgr = False
    #: the last ``track`` call's confidence score, None without a score head (S50, Lightning, stage-1 weights)
    score = None

    def __init__(self, checkpoint=None, variant='auto', device='cpu', backend='auto', precision=None,
                 update_interval=200, score_threshold=0.5, seed=0, redetection=None):
        from ..tracker import StarkTracker, TrackerParams
        if redetection is not None and redetection not in REDETECTION_MODES:
            raise ValueError('STARK option redetection: %r is not one of %s' % (redetection,
                                                                                ', '.join(REDETECTION_MODES)))
        params = TrackerParams(update_interval=update_interval, score_threshold=score_threshold)
        self.tracker = StarkTracker.from_checkpoint(checkpoint, variant, device, params, seed=seed, backend=backend,
                                                    precision=precision)
        self.tracker.warm_up()
        if redetection is not None:
            from ..tracker.target_state import MonitorParams, TargetMonitor
            growth = {} if redetection == 'on' else {'lost_search_growth': 1.0}
            self.tracker.monitor = TargetMonitor(MonitorParams(**growth))
        info = self.tracker.info
        self.synthetic = self.tracker.synthetic_weights
        self.backend = info.get('backend', backend)
        self.description = 'STARK %s (%s, %s%s %s%s)' % (
            info.get('variant'), 'SYNTHETIC weights' if self.synthetic else info['checkpoint'], self.backend,
            ' [backend auto]' if info.get('requested_backend') == 'auto' else '',
            info.get('precision', precision or 'fp32'), ', ' + info['device'] if 'device' in info else '')
        if redetection is not None:
            self.description += ', target states, re-detection %s' % redetection

    def initialize(self, image, box):
        self.tracker.initialize(image, box)

    def track(self, image):
        result = self.tracker.track(image)
        self.score = result.score
        return result.box


@dataclass(frozen=True)
class TrackerSpec:
    """A tracker to run: its results label, its kind and its options (picklable, for worker processes)."""

    label: str
    kind: str
    options: Tuple[Tuple[str, object], ...] = ()

    def build(self):
        """Construct the adapter (loads the network for STARK)."""
        if self.kind == 'stark':
            return StarkAdapter(**dict(self.options))
        if self.kind == 'static':
            return StaticTracker()
        return OpenCVTracker(self.kind)


def parse_tracker_specs(text, stark_defaults=None):
    """Parse ``--trackers`` (comma-separated specs) into :class:`TrackerSpec`.

    Args:
        text: e.g. ``'static,csrt,kcf,stark'`` or ``'csrt,lite=stark:variant=lightning,st50=stark:checkpoint=ST50.pth'``.
        stark_defaults: options every ``stark`` spec starts from (the command line's ``--checkpoint`` etc.).
    Raises:
        ValueError: unknown kind or option, a malformed value, an option on an OpenCV tracker, a repeated label.
    """
    specs = []
    for item in (part.strip() for part in text.split(',')):
        if not item:
            continue
        head, *pairs = item.split(':')
        label, _, kind = head.rpartition('=')
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise ValueError('unknown tracker %r in %r (known: %s)' % (kind, item, ', '.join(KINDS)))
        options = dict(stark_defaults or {}) if kind == 'stark' else {}
        for pair in pairs:
            key, sep, value = pair.partition('=')
            key = key.strip().replace('-', '_')
            if kind != 'stark':
                raise ValueError('tracker %s takes no options, got %r' % (kind, pair))
            if not sep or key not in STARK_OPTIONS:
                raise ValueError('bad STARK option %r in %r (known: %s)' % (pair, item, ', '.join(STARK_OPTIONS)))
            try:
                options[key] = STARK_OPTIONS[key](value)
            except ValueError:
                raise ValueError('STARK option %s: %r is not a %s' % (key, value, STARK_OPTIONS[key].__name__)) \
                    from None
        specs.append(TrackerSpec(label.strip() or kind, kind, tuple(sorted(options.items()))))
    labels = [s.label for s in specs]
    repeated = sorted({l for l in labels if labels.count(l) > 1})
    if repeated:
        raise ValueError('tracker label(s) %s given twice: name them, e.g. fast=stark:backend=openvino'
                         % ', '.join(repeated))
    if not specs:
        raise ValueError('no tracker given')
    for spec in specs:
        if not spec.label.replace('-', '').replace('_', '').replace('.', '').isalnum():
            raise ValueError('tracker label %r: use letters, digits, -, _ and . only (it names a folder)' % spec.label)
    return specs
