"""STARK-S and STARK-ST assembled from their parts, and the project's own ``lite0`` built the same way.

Sources: STARK_FACTS.md sections 1, 3, 6, 7 and 8 (official ``lib/models/stark/stark_s.py`` / ``stark_st.py``);
``lite0`` swaps the ResNet for EfficientNet-Lite0 (:mod:`.efficientnet`) and shrinks the transformer and heads.
Data flow: each image (template or search region) goes through backbone -> 1x1 bottleneck -> tokens with sine
positions (:meth:`Stark.forward_backbone`, cached for templates); the token sequences are concatenated
[templates...; search] and run through the transformer; the corner head reads the last ``feat_sz**2`` encoder
tokens (the search region), weighted by their similarity with the decoder output; the ST score head reads the
decoder output.
"""
from dataclasses import dataclass

import torch
from torch import nn

from .backbone import BACKBONE_STRIDE, build_backbone
from .efficientnet import EfficientNetBackbone
from .heads import CornerPeakScoreHead, build_box_head, build_score_head
from .position_encoding import build_position_encoding
from .transformer import build_transformer


@dataclass(frozen=True)
class VariantSpec:
    """What distinguishes the variants: backbone, templates in the sequence, score head, transformer/head sizes.

    Attributes:
        name: variant name.
        backbone: 'resnet50', 'resnet101' (STARK_FACTS.md section 2) or 'efficientnet_lite0' (:mod:`.efficientnet`).
        num_templates: template token blocks before the search block.
        score_head: whether a score head exists.
        score_kind: 'mlp' (STARK-ST, reads the decoder output) or 'corner_peak' (lite0, reads the corner maps;
            :class:`.heads.CornerPeakScoreHead`).
        hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward: transformer sizes (section 5).
        head_channels: first conv width of each corner-head tower (section 7, ``HEAD_DIM``).
    """

    name: str
    backbone: str
    num_templates: int
    score_head: bool
    hidden_dim: int = 256
    nheads: int = 8
    enc_layers: int = 6
    dec_layers: int = 6
    dim_feedforward: int = 2048
    head_channels: int = 256
    score_kind: str = 'mlp'


#: The released variants (STARK_FACTS.md section 1) and the project's own ``lite0``: EfficientNet-Lite0 backbone
#: cut at stride 16 (:mod:`.efficientnet`), ST-style (two templates, score head), a smaller transformer and corner
#: head chosen for the CPU budget (measurements in ``bench/README.md``), and a score head on the corner maps.
VARIANTS = {
    's50': VariantSpec('s50', 'resnet50', 1, False),
    'st50': VariantSpec('st50', 'resnet50', 2, True),
    'st101': VariantSpec('st101', 'resnet101', 2, True),
    'lite0': VariantSpec('lite0', 'efficientnet_lite0', 2, True, hidden_dim=128, nheads=4, enc_layers=1,
                         dec_layers=1, dim_feedforward=512, head_channels=64, score_kind='corner_peak'),
}


class BackboneWithPosition(nn.Sequential):
    """``[0]`` the truncated ResNet, ``[1]`` the sine position encoding (keys ``backbone.0.body.*``).

    ``forward(images, masks)``: images (B, 3, H, W), masks (B, H, W) bool (True = padding).
    Returns ``(features (B, 1024, h, w), feature_masks (B, h, w), pos (B, 256, h, w))``, h = H/16, w = W/16.
    """

    def forward(self, images, masks):
        features, feature_masks = self[0](images, masks)
        return features, feature_masks, self[1](feature_masks).to(features.dtype)


class Stark(nn.Module):
    """STARK-S / STARK-ST network.

    Attributes:
        num_templates: template token blocks expected before the search block (1 for S, 2 for ST).
        has_score_head: whether ``cls_head`` exists (False for S50 and for a stage-1 ST model).
        feat_sz: search feature side in cells (20 for a 320-pixel search region).
    """

    def __init__(self, backbone, transformer, box_head, num_templates, cls_head=None, num_queries=1):
        super().__init__()
        hidden_dim = transformer.d_model
        self.backbone = backbone
        self.transformer = transformer
        self.box_head = box_head
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.bottleneck = nn.Conv2d(backbone[0].num_channels, hidden_dim, kernel_size=1)
        if cls_head is not None:
            self.cls_head = cls_head
        self.num_templates = num_templates
        self.num_queries = num_queries
        self.feat_sz = box_head.feat_sz

    @property
    def has_score_head(self):
        return hasattr(self, 'cls_head')

    @property
    def device(self):
        """Where the parameters are (the tracker sends its inputs there)."""
        return next(self.parameters()).device

    def backbone_trainable_prefixes(self):
        """Parameter-name prefixes (network level) of the backbone parts that training updates.

        Every other ``backbone.*`` parameter stays at its ImageNet value (``requires_grad=False`` in the trainer);
        parameters outside the backbone all train. ResNet: ``layer2`` and ``layer3`` (STARK_FACTS.md section 2,
        12b); lite0: MBConv blocks 3-10 (:attr:`.efficientnet.EfficientNetBackbone.trainable_blocks`).
        """
        return tuple('backbone.0.' + prefix for prefix in self.backbone[0].trainable_prefixes())

    def forward_backbone(self, images, masks):
        """Backbone + bottleneck + position encoding for one image batch, flattened to tokens.

        Args:
            images: (B, 3, H, W) float, ImageNet-normalised RGB; H, W multiples of 16.
            masks: (B, H, W) bool, True = padded pixel.
        Returns:
            dict with ``feat`` (h*w, B, 256), ``mask`` (B, h*w) bool, ``pos`` (h*w, B, 256); token = y*w + x.
        """
        features, feature_masks = self.backbone[0](images, masks)
        return self.tokens_from_features(features, feature_masks)

    def tokens_from_features(self, features, feature_masks):
        """Bottleneck + sine position encoding on backbone features, flattened to tokens.

        The second half of :meth:`forward_backbone`, also used by training on cached backbone features
        (:mod:`stark_ros.training.cached_forward`).

        Args:
            features: (B, C, h, w) backbone output (C = ``backbone[0].num_channels``).
            feature_masks: (B, h, w) bool, True = padding (the pixel mask down-sampled by the backbone).
        Returns:
            dict with ``feat`` (h*w, B, D), ``mask`` (B, h*w) bool, ``pos`` (h*w, B, D); D = hidden size.
        """
        pos = self.backbone[1](feature_masks).to(features.dtype)
        features = self.bottleneck(features)
        return {'feat': features.flatten(2).permute(2, 0, 1),
                'mask': feature_masks.flatten(1),
                'pos': pos.flatten(2).permute(2, 0, 1)}

    def forward_head(self, token_dicts):
        """Transformer + heads over ``[template_1, ..., template_n, search]`` token dicts.

        Args:
            token_dicts: list of :meth:`forward_backbone` outputs; the search region must be last.
        Returns:
            dict with ``pred_boxes`` (B, Nq, 4) cxcywh normalised to the search region, and ``pred_logits``
            (B, Nq, 1) raw confidence logits, or None without a score head.
        """
        feat = torch.cat([d['feat'] for d in token_dicts], dim=0)
        mask = torch.cat([d['mask'] for d in token_dicts], dim=1)
        pos = torch.cat([d['pos'] for d in token_dicts], dim=0)
        hs, memory = self.transformer(feat, mask, self.query_embed.weight, pos)
        boxes, maps = self._box_from_tokens(hs, memory)
        out = {'pred_boxes': boxes, 'pred_logits': None}
        if self.has_score_head:
            if isinstance(self.cls_head, CornerPeakScoreHead):
                out['pred_logits'] = self.cls_head(*maps).view(boxes.shape[0], boxes.shape[1], 1)
            else:
                out['pred_logits'] = self.cls_head(hs)[-1]
        return out

    def _box_from_tokens(self, hs, memory):
        """Similarity-weighted search tokens -> corner head -> (B, Nq, 4) cxcywh (STARK_FACTS.md section 7), and the
        two raw corner score maps, each (B * Nq, 1, feat_sz, feat_sz)."""
        num_search = self.feat_sz * self.feat_sz
        enc = memory[-num_search:].transpose(0, 1)                  # (B, HW, C)
        dec = hs.squeeze(0).transpose(1, 2)                          # (B, C, Nq)
        att = torch.matmul(enc, dec)                                 # (B, HW, Nq)
        opt = (enc.unsqueeze(-1) * att.unsqueeze(-2)).permute(0, 3, 2, 1).contiguous()  # (B, Nq, C, HW)
        batch, num_queries, channels, _ = opt.shape
        corners, maps = self.box_head(opt.view(-1, channels, self.feat_sz, self.feat_sz), return_maps=True)
        return xyxy_to_cxcywh(corners).view(batch, num_queries, 4), maps

    def forward(self, template_images, template_masks, search_image, search_mask):
        """Full forward for training/export: lists of template (B,3,Ht,Wt)/(B,Ht,Wt) plus one search pair."""
        tokens = [self.forward_backbone(img, m) for img, m in zip(template_images, template_masks)]
        tokens.append(self.forward_backbone(search_image, search_mask))
        return self.forward_head(tokens)


def xyxy_to_cxcywh(boxes):
    """(..., 4) corners (x1, y1, x2, y2) -> (cx, cy, w, h); sizes may be negative (not clamped)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def build_stark(variant='st50', score_head=None, search_size=320, spec=None):
    """Build a STARK network (weights uninitialised: load a checkpoint or the ImageNet backbone).

    Args:
        variant: a name of :data:`VARIANTS` ('s50', 'st50', 'st101', 'lite0').
        score_head: override whether an ST-style model has its score head (False for stage-1 files).
        search_size: search region side in pixels; the corner head is built for ``search_size / 16`` cells.
        spec: a :class:`VariantSpec` to build instead of ``VARIANTS[variant]`` (size experiments).
    Raises:
        ValueError: unknown variant, or a search size that is not a multiple of 16.
    """
    if spec is None and variant not in VARIANTS:
        raise ValueError('unknown STARK variant %r (known: %s)' % (variant, ', '.join(VARIANTS)))
    if search_size % BACKBONE_STRIDE:
        raise ValueError('search_size must be a multiple of %d, got %r' % (BACKBONE_STRIDE, search_size))
    spec = VARIANTS[variant] if spec is None else spec
    transformer = build_transformer(spec.hidden_dim, spec.nheads, spec.enc_layers, spec.dec_layers,
                                    spec.dim_feedforward)
    backbone = BackboneWithPosition(_build_trunk(spec.backbone), build_position_encoding(transformer.d_model))
    box_head = build_box_head(transformer.d_model, spec.head_channels, feat_sz=search_size // BACKBONE_STRIDE,
                              stride=BACKBONE_STRIDE)
    with_score = spec.score_head if score_head is None else score_head
    model = Stark(backbone, transformer, box_head, spec.num_templates,
                  cls_head=build_score_head(transformer.d_model, kind=spec.score_kind) if with_score else None)
    model.variant = spec.name
    return model


def _build_trunk(name):
    if name == 'efficientnet_lite0':
        return EfficientNetBackbone()
    if name.startswith('resnet'):
        return build_backbone(int(name[len('resnet'):]))
    raise ValueError('unknown backbone %r' % (name,))
