"""The STARK tracker: ``initialize(image, box)`` then ``track(image)`` per frame (pytracking style; no rclpy).

Source: STARK_FACTS.md sections 10 and 11 (official ``lib/test/tracker/stark_st.py`` and ``stark_s.py``).
Per frame: crop the search region around the previous state -> backbone -> transformer over
[initial template; dynamic template; search] (S50: [template; search]) -> corner head -> map back to the image ->
clip (10 px margin) -> new state. The dynamic template is re-cropped from the current frame around the new state
every ``update_interval`` frames when the confidence score is strictly above ``score_threshold``.
"""
import time
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import InvalidBoxError
from ..model.backbone import BACKBONE_STRIDE
from .crop import (Preprocessor, clip_box, crop_overlaps_image, crop_window, map_box_back, sample_target,
                   validate_image, validate_init_box)
from .params import TrackerParams


@dataclass(frozen=True)
class TrackResult:
    """Output of one :meth:`StarkTracker.track` call.

    Attributes:
        box: (x, y, w, h) top-left and size, image pixels (float64), clipped to the image.
        score: confidence in [0, 1] (sigmoid of the score head), or None when the network has no score head.
        frame_id: 1 for the first frame after :meth:`StarkTracker.initialize`.
        template_updated: whether this frame refreshed the dynamic template.
        search_region: (x, y, side, side) pixels, the square the search region was cropped from this frame
            (:func:`stark_ros.tracker.crop.crop_window` of the previous box at the search area factor used).
        search_factor: the search area factor used this frame (``params.search_factor`` unless a
            :attr:`StarkTracker.monitor` widened it).
        target_state: the monitor's state after this frame ('tracking', 'uncertain', 'lost'), or None without a
            monitor (:mod:`stark_ros.tracker.target_state`).
        frames_since_confident: the monitor's count of frames since the last confident one, or None without a
            monitor.
    """

    box: Tuple[float, float, float, float]
    score: Optional[float]
    frame_id: int
    template_updated: bool
    search_region: Optional[Tuple[float, float, float, float]] = None
    search_factor: Optional[float] = None
    target_state: Optional[str] = None
    frames_since_confident: Optional[int] = None


class StarkTracker:
    """Single-object STARK tracker around a loaded network.

    Args:
        network: an :class:`~stark_ros.tracker.engine.InferenceEngine`: a network in eval mode (see
            :func:`stark_ros.model.load_network`) or an inference backend (:func:`stark_ros.backends.build_engine`).
        params: :class:`TrackerParams`.
        info: optional loading info (variant, format, device...) from ``load_network``.

    Images are (H, W, 3) uint8 RGB; boxes xywh in pixels. Not thread-safe: call from one thread at a time.

    Attribute ``monitor`` (default None): an optional per-target state machine
    (:class:`stark_ros.tracker.target_state.TargetMonitor`). When set, every frame's confidence score is passed to
    it; the dynamic template is then refreshed only while it says ``tracking``, and the search area factor of the
    next frame is the one it asks for (wider while the target is lost).

    :meth:`track` is split into :meth:`search_crop` (before the network) and :meth:`finish_track` (after it) so
    :class:`stark_ros.tracker.multi_tracker.MultiTracker` can run several targets in one batched network call with
    exactly the per-target arithmetic of :meth:`track`.
    """

    def __init__(self, network, params=TrackerParams(), info=None):
        self.network = network
        self.check_params(params)
        self.params = params
        self.info = dict(info or {})
        self.device = torch.device(network.device)
        self.preprocess = Preprocessor(self.device)
        self._templates = None
        self._state = None
        self._frame_id = 0
        self.monitor = None

    @classmethod
    def from_checkpoint(cls, checkpoint=None, variant='auto', device='cpu', params=TrackerParams(), seed=0,
                        backend='torch', precision=None, **backend_options):
        """Load a network (see :func:`stark_ros.model.load_network`) and wrap it in a tracker.

        ``checkpoint=None`` (or ``''``) loads the shipped STARK-lite0 model
        (:data:`stark_ros.model.DEFAULT_CHECKPOINT`); ``checkpoint='synthetic'`` gives deterministic synthetic
        weights for tests (``synthetic_weights`` is then True): the pipeline runs, but the boxes are meaningless. ``backend`` / ``precision`` / ``backend_options`` choose an
        inference engine (:func:`stark_ros.backends.build_engine`); the default, eager torch fp32, is the
        reference that reproduces the official tracker. ``backend='auto'`` takes the fastest exact engine
        installed for the device (:func:`stark_ros.backends.resolve_backend`); ``info['backend']`` names the one used.

        Raises:
            CheckpointError: unreadable or mismatched checkpoint. ValueError: bad variant, device, backend or
            precision.
        """
        from ..backends import load_engine, resolve_backend
        resolved = resolve_backend(backend, device, precision)
        if resolved != 'torch' or precision not in (None, 'fp32') or backend_options:
            engine, info = load_engine(checkpoint, variant, device, backend, precision, params, seed,
                                       **backend_options)
            return cls(engine, params, info)
        from ..model import load_network
        network, info = load_network(checkpoint, variant, device, params.search_size, seed, params.template_size)
        return cls(network, params, dict(info, backend='torch', requested_backend=str(backend).strip().lower(),
                                         precision='fp32'))

    def check_params(self, params):
        """Raise ValueError when the network cannot run ``params``: a search size it was not built for, or a template
        size other than the one it is fixed to (Lightning's learned position table; the fixed-shape graphs of the
        openvino / onnxruntime engines). Assign ``tracker.params`` only after this passed.
        """
        if params.search_size // BACKBONE_STRIDE != self.network.feat_sz:
            raise ValueError('search_size %d does not fit the network built for a %d-cell search map'
                             % (params.search_size, self.network.feat_sz))
        fixed = getattr(self.network, 'fixed_template_size', None)
        if fixed is not None and params.template_size != fixed:
            raise ValueError('template_size %d: STARK-%s%s takes %d-pixel templates only (no position table or '
                             'graph for other sizes)' % (params.template_size, self.network.variant.upper(),
                                                         ' on the %s backend' % self.network.backend
                                                         if getattr(self.network, 'backend', None) else '', fixed))

    @property
    def variant(self):
        """'s50', 'st50' or 'st101'."""
        return self.network.variant

    @property
    def has_score_head(self):
        """False for S50 and MMTracking stage-1 weights: ``TrackResult.score`` is then None."""
        return self.network.has_score_head

    @property
    def synthetic_weights(self):
        return self.info.get('format') == 'synthetic'

    @property
    def is_initialized(self):
        return self._state is not None

    @property
    def state(self):
        """The current target box (x, y, w, h) in pixels, or None before :meth:`initialize`."""
        return None if self._state is None else tuple(self._state)

    @state.setter
    def state(self, box):
        """Move the search centre (teacher forcing in evaluation); templates are kept. Box xywh, pixels."""
        if self._state is None:
            raise RuntimeError('set the state only after initialize()')
        values = [float(v) for v in box]
        if len(values) != 4:
            raise InvalidBoxError('box must be 4 numbers (x, y, w, h), got %r' % (box,))
        self._state = values

    @torch.inference_mode()
    def initialize(self, image, box):
        """Crop the template around ``box`` and (re)start tracking; replaces any previous target.

        Args:
            image: (H, W, 3) uint8 RGB.
            box: (x, y, w, h) pixels.
        Raises:
            InvalidImageError: malformed image.
            InvalidBoxError: empty, non-finite, or outside the image (nothing changes in the tracker then).
        """
        validate_image(image)
        box = validate_init_box(box, image.shape)
        p = self.params
        for factor in (p.template_factor, p.search_factor):
            if not crop_overlaps_image(image.shape, box, factor):
                raise InvalidBoxError('box %r is too far outside the %dx%d image to crop around it'
                                      % (tuple(box), image.shape[1], image.shape[0]))
        template = self._template_tokens(image, box)
        self._templates = [template] * self.network.num_templates
        self._state = box
        self._frame_id = 0
        if self.monitor is not None:
            self.monitor.reset()

    @torch.inference_mode()
    def track(self, image):
        """Track the target into a new frame.

        Args:
            image: (H, W, 3) uint8 RGB, same camera as at initialisation.
        Returns:
            :class:`TrackResult`.
        Raises:
            InvalidImageError: malformed image. RuntimeError: not initialised.
        """
        validate_image(image)
        search = self.search_crop(image)
        search_tokens = self.network.forward_backbone(*self.preprocess(search))
        out = self.network.forward_head(self._templates + [search_tokens])
        return self.finish_track(image, search, out['pred_boxes'], out['pred_logits'])

    @property
    def templates(self):
        """The template token dicts fed before the search tokens (initial template, then the dynamic one for
        ST/Lightning/lite0), or None before :meth:`initialize`. Read-only use."""
        return self._templates

    def current_search_factor(self, image_shape):
        """The search area factor of the next frame: ``params.search_factor``, or the wider one the monitor asks
        for while the target is lost, capped where the square covers the whole ``image_shape`` (H, W, ...) image
        from any centre (side ``2 * max(H, W)``), never below ``params.search_factor``."""
        base = self.params.search_factor
        if self.monitor is None or self._state is None:
            return base
        scale = self.monitor.search_scale
        if scale <= 1.0:
            return base
        _, _, w, h = self._state
        cover = 2.0 * max(image_shape[0], image_shape[1]) / max(1e-6, (w * h) ** 0.5)
        return max(base, min(base * scale, cover))

    def search_crop(self, image):
        """The search region of the next frame (:class:`stark_ros.tracker.crop.Crop`), cropped around the current
        box at :meth:`current_search_factor`. ``image`` must already be valid (:func:`validate_image`).

        Raises:
            RuntimeError: not initialised.
        """
        if self._state is None:
            raise RuntimeError('track() called before initialize()')
        factor = self.current_search_factor(image.shape)
        crop = sample_target(image, self._state, factor, self.params.search_size)
        self._search = (factor, crop_window(self._state, factor))
        return crop

    def finish_track(self, image, search, pred_boxes, pred_logits):
        """Map this target's network outputs back to the image and update the state (the second half of
        :meth:`track`).

        Args:
            image: the (H, W, 3) uint8 RGB frame :meth:`search_crop` cropped.
            search: the :class:`~stark_ros.tracker.crop.Crop` it returned.
            pred_boxes: this target's (Nq, 4) or (4,) cxcywh boxes normalised to the search patch.
            pred_logits: this target's (Nq, 1) confidence logits, or None without a score head.
        Returns:
            :class:`TrackResult`.
        """
        p = self.params
        height, width = image.shape[:2]
        pred = (pred_boxes.reshape(-1, 4).mean(dim=0) * p.search_size / search.resize_factor).tolist()
        state = clip_box(map_box_back(pred, self._state, p.search_size, search.resize_factor), height, width)
        score = None
        if pred_logits is not None:
            score = pred_logits.reshape(-1).float().sigmoid().item()
        self._frame_id += 1
        self._state = state
        allowed, target_state, since = True, None, None
        if self.monitor is not None:
            target_state = self.monitor.observe(score)
            allowed = self.monitor.allows_template_update
            since = self.monitor.frames_since_confident
        updated = (allowed and score is not None and len(self._templates) > 1
                   and self._frame_id % p.update_interval == 0 and score > p.score_threshold)
        if updated:
            self._templates[1] = self._template_tokens(image, state)
        factor, (x1, y1, side) = self._search
        return TrackResult(tuple(state), score, self._frame_id, updated, (x1, y1, side, side), factor, target_state,
                           since)

    @torch.inference_mode()
    def warm_up(self, passes=2):
        """Run the network ``passes`` times on a blank grey image, at the template and search sizes, so the first
        real frame does not pay one-time costs (oneDNN kernel generation, weight re-layout, allocator growth,
        CUDA context). The tracker's target and templates are left unchanged.

        Returns:
            seconds spent.
        """
        started = time.perf_counter()
        p = self.params
        side = 2 * max(p.search_size, p.template_size)
        image = np.full((side, side, 3), 128, dtype=np.uint8)
        box = (side / 2.0 - 32.0, side / 2.0 - 32.0, 64.0, 64.0)
        for _ in range(passes):
            template = self._template_tokens(image, box)
            search = sample_target(image, box, p.search_factor, p.search_size)
            search_tokens = self.network.forward_backbone(*self.preprocess(search))
            self.network.forward_head([template] * self.network.num_templates + [search_tokens])
        return time.perf_counter() - started

    def _template_tokens(self, image, box):
        crop = sample_target(image, box, self.params.template_factor, self.params.template_size)
        return self.network.forward_backbone(*self.preprocess(crop))
