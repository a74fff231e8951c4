"""Sine position encoding computed from a padding mask (DETR style, as used by STARK).

Source: STARK_FACTS.md section 4 (official ``lib/models/stark/position_encoding.py``, ``PositionEmbeddingSine``
with ``num_pos_feats=128, temperature=10000, normalize=True, scale=2*pi``).
"""
import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """Normalised 2-D sine encoding; no learnable parameters.

    With ``nm = ~mask``: ``ey = cumsum(nm, rows) / (last row + 1e-6) * 2pi`` and likewise ``ex`` over columns
    (1-based counts, so padding changes the encoding). Channel j of an axis is ``sin(e / d_j)`` for even j and
    ``cos(e / d_j)`` for odd j, ``d_j = temperature ** (2 * floor(j / 2) / num_pos_feats)``. Output channels are
    ``[y-part, x-part]`` (y first).

    ``forward(mask)``: mask (B, H, W) bool, True = padded cell. Returns (B, 2 * num_pos_feats, H, W) float32.
    """

    def __init__(self, num_pos_feats=128, temperature=10000, scale=2 * math.pi, eps=1e-6):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale
        self.eps = eps

    def forward(self, mask):
        not_mask = (~mask).to(torch.float32)
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        y_embed = y_embed / (y_embed[:, -1:, :] + self.eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = _interleave_sin_cos(x_embed[:, :, :, None] / dim_t)
        pos_y = _interleave_sin_cos(y_embed[:, :, :, None] / dim_t)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


def _interleave_sin_cos(angles):
    """(B, H, W, C) angles -> (B, H, W, C): sin on even channels, cos on odd channels."""
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=4).flatten(3)


def build_position_encoding(hidden_dim=256):
    """The 'sine' position encoding for a transformer of width ``hidden_dim`` (half the channels per axis)."""
    return PositionEmbeddingSine(num_pos_feats=hidden_dim // 2)
