"""The contract between :class:`stark_ros.tracker.StarkTracker` and what runs the network, written once.

Every network (:class:`stark_ros.model.Stark`, :class:`stark_ros.model.StarkLightning`) and every inference
backend (:mod:`stark_ros.backends`) satisfies :class:`InferenceEngine`; the tracker relies on nothing else. One
optional attribute: ``batching`` (bool, default True when absent) says whether a batch of several search regions
may be passed (:func:`stark_ros.tracker.multi_tracker.supports_batching`; False for an onnxruntime engine on a
batch-1 ONNX export).
"""
from typing import Dict, List, Protocol, runtime_checkable

import torch


@runtime_checkable
class InferenceEngine(Protocol):
    """What the tracker drives: two forward passes on torch tensors plus five attributes.

    Attributes:
        variant: 's50', 'st50', 'st101', 'lightning' or 'lite0'.
        num_templates: template token blocks before the search block (1 or 2).
        has_score_head: whether ``forward_head`` returns confidence logits.
        feat_sz: search feature side in cells (search patch side / 16).
        device: where the inputs go and the outputs come from.
    """

    variant: str
    num_templates: int
    has_score_head: bool
    feat_sz: int
    device: torch.device

    def forward_backbone(self, images: torch.Tensor, masks: torch.Tensor) -> Dict[str, torch.Tensor]:
        """images (B, 3, H, W) float32 ImageNet-normalised RGB, masks (B, H, W) bool (True = padding) ->
        ``{'feat': (L, B, C) float32, 'mask': (B, L) bool, 'pos': (L, B, C) float32}``, L = (H/16)(W/16)."""

    def forward_head(self, token_dicts: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """``[template_1, ..., template_n, search]`` token dicts -> ``{'pred_boxes'`` (B, Nq, 4) or (B, 4) cxcywh
        normalised to the search patch, ``'pred_logits'`` (B, Nq, 1) or None without a score head``}``."""
