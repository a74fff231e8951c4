"""STARK-Lightning (RepVGG-A0 backbone, learned positions, one lite encoder layer, RepVGG corner head).

Sources: STARK_FACTS.md sections 14 and 14b (official ``lib/models/stark/stark_lightning_x_trt.py``,
``backbone_X.py``, ``lite_encoder.py``, ``head.py``, ``repvgg.py``; yaml ``baseline_rephead_4_lite_search5``).

* Backbone: RepVGG-A0 at width x0.75 up to stage3: stage0 (3->48, stride 2), stage1 2 x 48, stage2 4 x 96,
  stage3 4 x 192 (the first block of each stage has stride 2); total stride 16; frozen batch norms.
* Bottleneck 1x1 conv 192 -> 128. Learned absolute positions, independent of the mask: token y*w + x gets
  ``[col_embed[x] (64), row_embed[y] (64)]`` (x first), with 20x20 tables for the search region and 8x8 for the
  template.
* Lite encoder (post-norm, 8 heads, FFN 1024): the search tokens with positions are the queries and stay in the
  residual; keys are [template; search] with positions, values without.
* Head: two RepVGG blocks (128 -> 128, regular BN) and a 3x3 conv to two maps (top-left, bottom-right);
  soft-argmax on the cell centres ``(i + 0.5) * 16``, divided by 320. No score head, no template update.

Checkpoints hold the training-time (multi-branch) form; :func:`fuse_repvgg` folds each block into one 3x3 conv
(section 14b re-parameterisation), which the tracker uses for speed (boxes within 3.2e-4 px of un-fused).
"""
import torch
from torch import nn
import torch.nn.functional as F

from .backbone import BACKBONE_STRIDE, FrozenBatchNorm2d, bn_scale_shift, downsample_mask
from .stark import xyxy_to_cxcywh
from .transformer import EncoderLayer

#: (blocks, channels) of stages 0..3 for RepVGG-A0 at width 0.75, truncated after stage 3 of 4 blocks.
LIGHTNING_STAGES = ((1, 48), (2, 48), (4, 96), (4, 192))
LIGHTNING_HIDDEN_DIM = 128


class ConvBN(nn.Sequential):
    """Conv without bias followed by a batch norm; keys ``conv.*`` and ``bn.*``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, norm):
        super().__init__()
        self.add_module('conv', nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                                          bias=False))
        self.add_module('bn', norm(out_channels))

    def fused_kernel(self):
        """(3x3 kernel, bias) equal to this branch; a 1x1 kernel sits on the centre tap."""
        scale, shift = bn_scale_shift(self.bn)
        kernel = self.conv.weight * scale.reshape(-1, 1, 1, 1)
        if kernel.shape[-1] == 1:
            kernel = F.pad(kernel, (1, 1, 1, 1))
        return kernel, shift


class RepVGGBlock(nn.Module):
    """``ReLU(dense3x3(x) + conv1x1(x) [+ BN(x)])``; the identity branch exists when in == out and stride 1.

    After :meth:`fuse_` the block is a single 3x3 conv with bias (``rbr_reparam``) followed by ReLU.
    """

    def __init__(self, in_channels, out_channels, stride=1, norm=FrozenBatchNorm2d):
        super().__init__()
        if in_channels == out_channels and stride == 1:
            self.rbr_identity = norm(in_channels)
        self.rbr_dense = ConvBN(in_channels, out_channels, 3, stride, norm)
        self.rbr_1x1 = ConvBN(in_channels, out_channels, 1, stride, norm)
        self.stride = stride

    def forward(self, x):
        if hasattr(self, 'rbr_reparam'):
            return F.relu(self.rbr_reparam(x))
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if hasattr(self, 'rbr_identity'):
            out = out + self.rbr_identity(x)
        return F.relu(out)

    @torch.no_grad()
    def fuse_(self):
        """Fold the branches into one 3x3 conv in place (STARK_FACTS.md 14b); returns self."""
        if hasattr(self, 'rbr_reparam'):
            return self
        kernel, bias = self.rbr_dense.fused_kernel()
        kernel_1x1, bias_1x1 = self.rbr_1x1.fused_kernel()
        kernel, bias = kernel + kernel_1x1, bias + bias_1x1
        if hasattr(self, 'rbr_identity'):
            scale, shift = bn_scale_shift(self.rbr_identity)
            identity = torch.zeros_like(kernel)
            channels = torch.arange(kernel.shape[0], device=kernel.device)
            identity[channels, channels, 1, 1] = 1.0
            kernel, bias = kernel + identity * scale.reshape(-1, 1, 1, 1), bias + shift
            del self.rbr_identity
        conv = self.rbr_dense.conv
        self.rbr_reparam = nn.Conv2d(conv.in_channels, conv.out_channels, 3, self.stride, 1, bias=True).to(kernel)
        self.rbr_reparam.weight.copy_(kernel)
        self.rbr_reparam.bias.copy_(bias)
        del self.rbr_dense, self.rbr_1x1
        return self


class RepVGGBody(nn.Module):
    """RepVGG stages 0..3 (keys ``stage0.*``, ``stage1.{i}.*`` ...): (B, 3, H, W) -> (B, 192, H/16, W/16)."""

    def __init__(self, stages=LIGHTNING_STAGES):
        super().__init__()
        in_channels = 3
        for index, (blocks, channels) in enumerate(stages):
            layers = [RepVGGBlock(in_channels if i == 0 else channels, channels, 2 if i == 0 else 1)
                      for i in range(blocks)]
            self.add_module('stage%d' % index, layers[0] if index == 0 else nn.Sequential(*layers))
            in_channels = channels
        self.num_channels = in_channels

    def forward(self, x):
        for index in range(4):
            x = getattr(self, 'stage%d' % index)(x)
        return x


class LightningBackbone(nn.Module):
    """``body`` = RepVGG stages; ``forward(images, masks)`` -> (features, nearest-down-sampled masks)."""

    def __init__(self):
        super().__init__()
        self.body = RepVGGBody()
        self.num_channels = self.body.num_channels

    def forward(self, images, masks):
        features = self.body(images)
        return features, downsample_mask(masks, features.shape[-2:])


class LearnedPositionEmbedding(nn.Module):
    """Absolute learned positions for a ``size x size`` map: token y*size + x -> [col_embed[x], row_embed[y]]."""

    def __init__(self, size, num_pos_feats=64):
        super().__init__()
        self.row_embed = nn.Embedding(size, num_pos_feats)
        self.col_embed = nn.Embedding(size, num_pos_feats)
        self.size = size

    def forward(self):
        """Returns (size*size, 1, 2*num_pos_feats)."""
        n = self.size
        cols = self.col_embed.weight.unsqueeze(0).expand(n, n, -1)      # [y, x] -> col_embed[x]
        rows = self.row_embed.weight.unsqueeze(1).expand(n, n, -1)      # [y, x] -> row_embed[y]
        return torch.cat((cols, rows), dim=-1).reshape(n * n, 1, -1)


class LiteEncoderLayer(EncoderLayer):
    """One post-norm encoder layer whose queries are the search tokens only (STARK_FACTS.md 14b).

    Same parameters as :class:`stark_ros.model.transformer.EncoderLayer`; only the data flow differs.
    ``forward(query, query_pos, memory, memory_pos, key_padding_mask)``: query (Lx, B, C) search features,
    memory (Lz + Lx, B, C) [template; search] features, positions of the same shapes, mask (B, Lz + Lx).
    Returns (Lx, B, C): ``x = LN1(q + MHA(q, k, v)); LN2(x + FFN(x))`` with ``q = query + query_pos`` (the
    position stays in the residual stream, unlike the DETR encoder).
    """

    def __init__(self, d_model=128, nhead=8, dim_feedforward=1024, dropout=0.1):
        super().__init__(d_model, nhead, dim_feedforward, dropout)

    def forward(self, query, query_pos, memory, memory_pos, key_padding_mask):
        q = query + query_pos
        attn = self.self_attn(q, memory + memory_pos, value=memory, key_padding_mask=key_padding_mask,
                              need_weights=False)[0]
        x = self.norm1(q + self.dropout1(attn))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x))))))


class LiteTransformer(nn.Module):
    """Holds the single lite encoder layer under the key ``encoder`` (no ``layers.N`` level)."""

    def __init__(self, d_model=LIGHTNING_HIDDEN_DIM):
        super().__init__()
        self.encoder = LiteEncoderLayer(d_model)
        self.d_model = d_model


class RepCornerHead(nn.Module):
    """``CORNER_LITE_REP_v2``: 2 RepVGG blocks + 3x3 conv to (tl, br) maps, soft-argmax on cell centres.

    ``forward(x)``: (B, C, feat_sz, feat_sz) -> (B, 4) corners (x_tl, y_tl, x_br, y_br) normalised by
    ``feat_sz * stride``.
    """

    def __init__(self, channels=LIGHTNING_HIDDEN_DIM, feat_sz=20, stride=BACKBONE_STRIDE):
        super().__init__()
        self.conv_tower = nn.Sequential(RepVGGBlock(channels, channels, norm=nn.BatchNorm2d),
                                        RepVGGBlock(channels, channels, norm=nn.BatchNorm2d),
                                        nn.Conv2d(channels, 2, 3, padding=1))
        self.feat_sz = feat_sz
        self.img_sz = feat_sz * stride
        cells = torch.arange(feat_sz * feat_sz, dtype=torch.float32)
        self.register_buffer('coord_x', ((cells % feat_sz) + 0.5) * stride, persistent=False)
        self.register_buffer('coord_y', (torch.div(cells, feat_sz, rounding_mode='floor') + 0.5) * stride,
                             persistent=False)

    def forward(self, x):
        maps = self.conv_tower(x)
        prob = F.softmax(maps.flatten(2), dim=2)                       # (B, 2, HW)
        xs, ys = (prob * self.coord_x).sum(2), (prob * self.coord_y).sum(2)
        return torch.stack((xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]), dim=1) / self.img_sz


class StarkLightning(nn.Module):
    """STARK-Lightning with the same interface as :class:`stark_ros.model.stark.Stark`.

    ``forward_backbone(images, masks)`` -> token dict (feat/mask/pos), ``forward_head([template, search])`` ->
    ``{'pred_boxes': (B, 4) cxcywh normalised, 'pred_logits': None}``.
    """

    variant = 'lightning'
    num_templates = 1
    has_score_head = False

    def __init__(self, template_size=128, search_size=320):
        super().__init__()
        stride = BACKBONE_STRIDE
        self.backbone = LightningBackbone()
        self.transformer = LiteTransformer()
        self.box_head = RepCornerHead(LIGHTNING_HIDDEN_DIM, search_size // stride, stride)
        self.pos_emb_x = LearnedPositionEmbedding(search_size // stride)
        self.pos_emb_z0 = LearnedPositionEmbedding(template_size // stride)
        self.bottleneck = nn.Conv2d(self.backbone.num_channels, LIGHTNING_HIDDEN_DIM, 1)
        self.feat_sz = search_size // stride

    @property
    def device(self):
        """Where the parameters are (the tracker sends its inputs there)."""
        return next(self.parameters()).device

    @property
    def fixed_template_size(self):
        """The only template patch side (pixels) the learned template position table fits."""
        return self.pos_emb_z0.size * BACKBONE_STRIDE

    def forward_backbone(self, images, masks):
        """images (B, 3, H, W), masks (B, H, W) -> feat (h*w, B, 128), mask (B, h*w), pos (h*w, B, 128).

        Raises:
            ValueError: a feature map that is neither the template's nor the search region's size.
        """
        features, feature_masks = self.backbone(images, masks)
        features = self.bottleneck(features)
        side = int(features.shape[-1])   # a Python int also when traced (ONNX export)
        table = {self.pos_emb_x.size: self.pos_emb_x, self.pos_emb_z0.size: self.pos_emb_z0}.get(side)
        if table is None or features.shape[-2] != side:
            raise ValueError('no position table for a %dx%d feature map' % tuple(features.shape[-2:]))
        batch = features.shape[0]
        return {'feat': features.flatten(2).permute(2, 0, 1),
                'mask': feature_masks.flatten(1),
                'pos': table().expand(-1, batch, -1)}

    def forward_head(self, token_dicts):
        template, search = token_dicts
        memory = torch.cat((template['feat'], search['feat']), dim=0)
        memory_pos = torch.cat((template['pos'], search['pos']), dim=0)
        mask = torch.cat((template['mask'], search['mask']), dim=1)
        enc = self.transformer.encoder(search['feat'], search['pos'], memory, memory_pos, mask)
        batch = enc.shape[1]
        fmap = enc.permute(1, 2, 0).reshape(batch, -1, self.feat_sz, self.feat_sz)
        return {'pred_boxes': xyxy_to_cxcywh(self.box_head(fmap)), 'pred_logits': None}


def fuse_repvgg(model):
    """Fold every :class:`RepVGGBlock` of ``model`` into a single conv, in place; returns ``model``."""
    for module in list(model.modules()):
        if isinstance(module, RepVGGBlock):
            module.fuse_()
    return model


def build_stark_lightning(template_size=128, search_size=320):
    """STARK-Lightning in training-time form (the form official checkpoints hold)."""
    return StarkLightning(template_size, search_size)
