"""STARK prediction heads: the corner head (box), the MLP score head and lite0's corner-peak score head (confidence).

Sources: STARK_FACTS.md section 7 (official ``Corner_Predictor`` in ``lib/models/stark/head.py``) and section 8
(``MLP`` score head of ``build_starkst``); :class:`CornerPeakScoreHead` is the project's own (lite0 only).
"""
import torch
from torch import nn
import torch.nn.functional as F

from .backbone import BACKBONE_STRIDE


def _conv_bn_relu(in_channels, out_channels):
    """3x3 conv (pad 1, with bias) -> regular BatchNorm2d (eval statistics) -> ReLU; keys ``.0`` conv, ``.1`` BN."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class CornerPredictor(nn.Module):
    """Corner head: two conv towers score the top-left and bottom-right corners; soft-argmax gives coordinates.

    Each tower: 4 x (3x3 conv + BN + ReLU) with channels in -> c -> c/2 -> c/4 -> c/8, then a 1x1 conv to 1 map.
    Soft-argmax: softmax over the ``feat_sz**2`` cells (row-major), expectation of the cell's top-left corner
    ``(index * stride)`` (no half-cell offset), divided by ``feat_sz * stride``.

    ``forward(x)``: x (B, C, feat_sz, feat_sz). Returns (B, 4) corners ``(x_tl, y_tl, x_br, y_br)`` normalised to
    the search region (0 .. (feat_sz-1)/feat_sz).
    """

    def __init__(self, inplanes=256, channel=256, feat_sz=20, stride=BACKBONE_STRIDE):
        super().__init__()
        self.feat_sz = feat_sz
        self.stride = stride
        self.img_sz = feat_sz * stride
        widths = (inplanes, channel, channel // 2, channel // 4, channel // 8)
        for corner in ('tl', 'br'):
            for index in range(4):
                self.add_module('conv%d_%s' % (index + 1, corner), _conv_bn_relu(widths[index], widths[index + 1]))
            self.add_module('conv5_%s' % corner, nn.Conv2d(widths[4], 1, 1))
        cells = torch.arange(feat_sz * feat_sz, dtype=torch.float32)
        self.register_buffer('coord_x', (cells % feat_sz) * stride, persistent=False)
        self.register_buffer('coord_y', torch.div(cells, feat_sz, rounding_mode='floor') * stride, persistent=False)

    def score_maps(self, x):
        """The raw corner score maps, each (B, 1, feat_sz, feat_sz): (top-left, bottom-right)."""
        maps = []
        for corner in ('tl', 'br'):
            y = x
            for index in range(1, 6):
                y = getattr(self, 'conv%d_%s' % (index, corner))(y)
            maps.append(y)
        return maps[0], maps[1]

    def soft_argmax(self, score_map):
        """(B, 1, H, W) score map -> expected (x, y), each (B,), in search-region pixels."""
        prob = F.softmax(score_map.reshape(score_map.shape[0], -1), dim=1)
        return (self.coord_x * prob).sum(dim=1), (self.coord_y * prob).sum(dim=1)

    def forward(self, x, return_maps=False):
        """(B, C, feat_sz, feat_sz) -> (B, 4) corners; with ``return_maps`` also the raw score maps:
        ``(corners, (map_tl, map_br))``, each map (B, 1, feat_sz, feat_sz)."""
        score_tl, score_br = self.score_maps(x)
        x_tl, y_tl = self.soft_argmax(score_tl)
        x_br, y_br = self.soft_argmax(score_br)
        corners = torch.stack((x_tl, y_tl, x_br, y_br), dim=1) / self.img_sz
        return (corners, (score_tl, score_br)) if return_maps else corners


class CornerPeakScoreHead(nn.Module):
    """lite0's score head: a logistic regression on how peaked the corner head's two probability maps are.

    Features: for each corner, the log of the largest cell probability of the soft-argmax distribution,
    ``max(s) - logsumexp(s)`` over the ``feat_sz**2`` cells (0 for a one-hot map, ``-log(feat_sz**2)`` for a flat
    one); logit = ``w_tl * f_tl + w_br * f_br + b`` (``linear``, keys ``cls_head.linear.*``), trained in stage 2
    with the binary cross-entropy of STARK_FACTS.md section 12 like the MLP head. The project's own design: on the
    validation split of ``train_real`` the MLP head on the decoder output of the stage-1 lite0 network did not
    separate target from background (balanced accuracy 0.49), while the peak probability of the top-left map alone
    ranked frames with IoU > 0.5 above the others with a ROC AUC of 0.92 (``README.md``, shipped model).

    ``forward(score_tl, score_br)``: two (B, 1, h, w) raw corner score maps -> (B, 1) logits.
    """

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        with torch.no_grad():       # a sensible start: a flatter map is a less confident one
            self.linear.weight.fill_(1.0)
            self.linear.bias.fill_(4.0)

    @staticmethod
    def peak_log_probs(score_tl, score_br):
        """(B, 2) log peak probabilities (top-left, bottom-right) of two (B, 1, h, w) score maps, float32.

        Computed as ``-log(sum(exp(s - max(s))))``, which is ``max(s) - logsumexp(s)`` in the form a stable
        logsumexp evaluates (same value and gradient), written out so that the exported ONNX graph holds
        ReduceMax / Exp / ReduceSum / Log and no ReduceLogSumExp: OpenVINO's ONNX frontend ignores that op's
        ``axes`` attribute at opsets 13-17 and reduces over every axis (openvinotoolkit/openvino#38238), which
        mixes the rows of a batch of several targets (measured: logits off by 2-4 for a batch of 4; right for a
        batch of 1).
        """
        feats = []
        for score_map in (score_tl, score_br):
            flat = score_map.flatten(1).float()
            peak = flat.amax(dim=1, keepdim=True)
            feats.append(-torch.log(torch.exp(flat - peak).sum(dim=1)))
        return torch.stack(feats, dim=1)

    def forward(self, score_tl, score_br):
        feats = self.peak_log_probs(score_tl, score_br)
        return self.linear(feats.to(self.linear.weight.dtype))


class MLP(nn.Module):
    """A plain multi-layer perceptron, ReLU between layers (none after the last); keys ``layers.{0..n-1}``."""

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x


def build_box_head(hidden_dim=256, head_dim=256, feat_sz=20, stride=BACKBONE_STRIDE):
    """The 'CORNER' box head for a ``feat_sz x feat_sz`` search feature map (20 = 320 / 16)."""
    return CornerPredictor(hidden_dim, head_dim, feat_sz, stride)


def build_score_head(hidden_dim=256, num_layers=3, kind='mlp'):
    """The score head: ``kind`` 'mlp' = the STARK-ST MLP hidden_dim -> hidden_dim -> hidden_dim -> 1 logit (reads
    the decoder output), 'corner_peak' = :class:`CornerPeakScoreHead` (reads the corner score maps).

    Raises:
        ValueError: unknown kind.
    """
    if kind == 'mlp':
        return MLP(hidden_dim, hidden_dim, 1, num_layers)
    if kind == 'corner_peak':
        return CornerPeakScoreHead()
    raise ValueError("unknown score head kind %r (known: 'mlp', 'corner_peak')" % (kind,))
