"""Several targets on the same images: one :class:`StarkTracker` state per target id, tracked in one batched
network call per image (no rclpy).

Per target the state is a :class:`StarkTracker` sharing the network (its template and dynamic template tokens, last
box, frame counter, and optional :class:`~stark_ros.tracker.target_state.TargetMonitor`). :meth:`MultiTracker.track`
crops every target's search region, stacks the crops on the batch dimension, runs the backbone once on the stack,
stacks each template slot of every target on the batch dimension too, runs transformer + heads once, and hands each
target its row (:meth:`StarkTracker.finish_track`): the same arithmetic as one :meth:`StarkTracker.track` per target,
so the boxes agree with single-target runs to float32 rounding of the batched kernels
(``test/test_multi_tracker.py`` holds them to 1e-4 px).

Batching needs an engine whose graphs take any batch size: the torch networks, the ``torch`` / ``torch-fast``
engines, and the ``openvino`` / ``onnxruntime`` engines, whose search-backbone and head graphs are exported with a
dynamic batch axis (:data:`stark_ros.backends.export_onnx.BATCH_AXES`; openvino runs batch 1 on a static copy and
B >= 2 on the dynamic model, :mod:`stark_ros.backends.openvino_backend`). Only an ``onnxruntime`` engine on an
export directory of batch-1 graphs (written before the batch axis was dynamic, or with ``--fixed-batch``) does not
batch: there the targets are tracked one after the other (a loop of :meth:`StarkTracker.track`), with identical
results and a cost linear in the number of targets. :func:`supports_batching` tells which applies. One target
always takes the plain :meth:`StarkTracker.track`.
"""
import copy
import time
from typing import Dict

import numpy as np
import torch

from .crop import validate_image
from .stark_tracker import StarkTracker, TrackResult

#: Default and largest number of targets one :class:`MultiTracker` holds.
DEFAULT_MAX_TARGETS = 8
MAX_TARGETS_LIMIT = 64


def supports_batching(network):
    """True when ``network`` (an :class:`~stark_ros.tracker.engine.InferenceEngine`) takes a batch of several
    search regions in one ``forward_backbone`` / ``forward_head`` call: every torch network and engine, and the
    ``openvino`` / ``onnxruntime`` engines on graphs with a dynamic batch axis (their ``batching`` attribute,
    :class:`stark_ros.backends.common.Engine`); not an ``onnxruntime`` engine on a batch-1 export directory."""
    return bool(getattr(network, 'batching', True))


#: Search regions per backbone call for an eager torch network on the CPU. Its backbone costs more per region in
#: larger batches (lite0, 2 threads, 320x320: 30.1 ms for 1, 25.8 per region for 2, 41.8 for 4, 50.2 for 8; the
#: activations of 4+ regions leave the CPU caches), so it runs in pairs there; transformer + heads stay one call.
EAGER_CPU_BACKBONE_CHUNK = 2


def default_backbone_chunk(network):
    """Search regions per ``forward_backbone`` call on ``network``: :data:`EAGER_CPU_BACKBONE_CHUNK` for an eager
    torch module on the CPU (the ``torch`` backend), None (all regions in one call) for every engine and for CUDA."""
    if isinstance(network, torch.nn.Module):
        try:
            device = next(network.parameters()).device
        except StopIteration:
            return None
        if device.type == 'cpu':
            return EAGER_CPU_BACKBONE_CHUNK
    return None


def _stack_tokens(token_dicts):
    """Token dicts of batches B1, B2, ... (1 each for templates, chunks of search regions) -> one token dict with
    them in order on the batch dimension (feat/pos (L, B, C), mask (B, L), B = B1 + B2 + ...)."""
    return {'feat': torch.cat([d['feat'] for d in token_dicts], dim=1),
            'mask': torch.cat([d['mask'] for d in token_dicts], dim=0),
            'pos': torch.cat([d['pos'] for d in token_dicts], dim=1)}


class TooManyTargetsError(ValueError):
    """Adding a new target id would exceed ``max_targets``."""


class MultiTracker:
    """Tracks up to ``max_targets`` targets, each under a string id, on the same images.

    Args:
        tracker: a :class:`StarkTracker` (its network, parameters and class are used for every target; its own
            target, if any, is ignored). A subclass's ``initialize`` / ``track`` overrides apply to every target
            (``track`` only on the one-by-one path).
        max_targets: largest number of targets, 1..:data:`MAX_TARGETS_LIMIT`.
        batch: True to batch when the engine allows (:func:`supports_batching`), False to always loop.
        monitor_factory: optional callable () -> :class:`~stark_ros.tracker.target_state.TargetMonitor`, one
            monitor per new target (confidence state machine, wider search while lost).
        backbone_chunk: search regions per backbone call (None: all in one call); default
            :func:`default_backbone_chunk` (pairs for an eager torch network on the CPU, else all at once).

    Images are (H, W, 3) uint8 RGB; boxes xywh (top-left + size) in pixels. Not thread-safe.

    Raises:
        ValueError: ``max_targets`` out of range.
    """

    def __init__(self, tracker, max_targets=DEFAULT_MAX_TARGETS, batch=True, monitor_factory=None,
                 backbone_chunk='default'):
        self.prototype = tracker
        self.max_targets = max_targets
        self.batch = bool(batch) and supports_batching(tracker.network)
        self.backbone_chunk = default_backbone_chunk(tracker.network) if backbone_chunk == 'default' \
            else backbone_chunk
        self.monitor_factory = monitor_factory
        self._targets = {}          # id -> StarkTracker, in insertion order

    @classmethod
    def from_checkpoint(cls, *args, max_targets=DEFAULT_MAX_TARGETS, batch=True, monitor_factory=None, **kwargs):
        """:meth:`StarkTracker.from_checkpoint` (same arguments), wrapped."""
        return cls(StarkTracker.from_checkpoint(*args, **kwargs), max_targets, batch, monitor_factory)

    # ------------------------------------------------------------------ properties shared with StarkTracker
    @property
    def max_targets(self):
        return self._max_targets

    @max_targets.setter
    def max_targets(self, value):
        if int(value) != value or not 1 <= value <= MAX_TARGETS_LIMIT:
            raise ValueError('max_targets must be an integer in [1, %d], got %r' % (MAX_TARGETS_LIMIT, value))
        self._max_targets = int(value)

    @property
    def network(self):
        return self.prototype.network

    @property
    def params(self):
        """:class:`TrackerParams` given to targets added from now on (existing targets keep theirs)."""
        return self.prototype.params

    @params.setter
    def params(self, params):
        self.prototype.params = params

    def __getattr__(self, name):
        # variant, device, info, has_score_head, synthetic_weights, check_params, warm_up: the prototype's
        if name in ('variant', 'device', 'info', 'has_score_head', 'synthetic_weights', 'check_params', 'warm_up'):
            return getattr(self.prototype, name)
        raise AttributeError(name)

    # ------------------------------------------------------------------ targets
    @property
    def ids(self):
        """Target ids, in the order they were first added."""
        return list(self._targets)

    def __len__(self):
        return len(self._targets)

    def __contains__(self, target_id):
        return target_id in self._targets

    def target(self, target_id):
        """The per-target :class:`StarkTracker` of ``target_id`` (KeyError when unknown). Read-only use."""
        return self._targets[target_id]

    def add(self, target_id, image, box):
        """Start tracking ``box`` in ``image`` under ``target_id``; an existing id is re-initialised (replaced).

        Args:
            target_id: any string.
            image: (H, W, 3) uint8 RGB.
            box: (x, y, w, h) pixels.
        Raises:
            TooManyTargetsError: a new id while ``max_targets`` targets are tracked.
            InvalidImageError, InvalidBoxError: as :meth:`StarkTracker.initialize` (nothing changes then).
        """
        if target_id not in self._targets and len(self._targets) >= self._max_targets:
            raise TooManyTargetsError('cannot add target %r: %d target(s) already tracked (max_targets=%d); reset '
                                      'one first' % (target_id, len(self._targets), self._max_targets))
        target = copy.copy(self.prototype)       # shares network, preprocessor, params
        target.monitor = self.monitor_factory() if self.monitor_factory is not None else None
        target.initialize(image, box)            # raises before anything changes
        self._targets[target_id] = target

    def remove(self, target_id):
        """Stop tracking ``target_id``; returns False when it was not tracked."""
        return self._targets.pop(target_id, None) is not None

    def clear(self):
        """Drop every target; returns how many there were."""
        count = len(self._targets)
        self._targets.clear()
        return count

    # ------------------------------------------------------------------ tracking
    def warm_up_batch(self, passes=1):
        """Run ``passes`` batched calls of two scratch targets on a blank grey image, so the first real image with
        several targets does not pay one-time costs (openvino compiles its dynamic-batch model on the first
        batched call: about 0.3 s for lite0, 0.9 s for ST50 on a 2-core CPU). The tracked targets are unchanged;
        nothing is done without batching. (:meth:`StarkTracker.warm_up` warms the one-target path.)

        Returns:
            seconds spent.
        """
        if not self.batch:
            return 0.0
        started = time.perf_counter()
        p = self.prototype.params
        side = 2 * max(p.search_size, p.template_size)
        image = np.full((side, side, 3), 128, dtype=np.uint8)
        scratch = MultiTracker(self.prototype, 2, batch=True)      # shares the network, has its own targets
        for index, target_id in enumerate(('a', 'b')):
            scratch.add(target_id, image, (side / 2.0 - 32.0 - 8.0 * index, side / 2.0 - 32.0, 64.0, 64.0))
        for _ in range(passes):
            scratch.track(image)
        return time.perf_counter() - started

    @torch.inference_mode()
    def track(self, image, ids=None) -> Dict[str, TrackResult]:
        """Track every target (or the ``ids`` given) into ``image``.

        Args:
            image: (H, W, 3) uint8 RGB.
            ids: optional subset of target ids (default all), unknown ids are ignored.
        Returns:
            ``{id: TrackResult}`` in target order (empty without targets).
        Raises:
            InvalidImageError: malformed image.
        """
        validate_image(image)
        chosen = [(i, t) for i, t in self._targets.items() if ids is None or i in ids]
        if not chosen:
            return {}
        if len(chosen) == 1 or not self.batch:
            return {i: t.track(image) for i, t in chosen}
        crops = [t.search_crop(image) for _, t in chosen]
        inputs = [t.preprocess(c) for (_, t), c in zip(chosen, crops)]
        images = torch.cat([img for img, _ in inputs], dim=0)
        masks = torch.cat([mask for _, mask in inputs], dim=0)
        chunk = self.backbone_chunk or len(chosen)
        parts = [self.network.forward_backbone(images[k:k + chunk], masks[k:k + chunk])
                 for k in range(0, len(chosen), chunk)]
        search_tokens = parts[0] if len(parts) == 1 else _stack_tokens(parts)
        slots = len(chosen[0][1].templates)
        templates = [_stack_tokens([t.templates[k] for _, t in chosen]) for k in range(slots)]
        out = self.network.forward_head(templates + [search_tokens])
        logits = out['pred_logits']
        return {i: t.finish_track(image, crop, out['pred_boxes'][row], None if logits is None else logits[row])
                for row, ((i, t), crop) in enumerate(zip(chosen, crops))}
