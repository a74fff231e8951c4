"""Training forward on cached backbone features (:mod:`.feature_cache`): the trainable rest of the network only.

The network is unchanged: its backbone's first ``cached_blocks`` blocks ran when the cache was built (they stay at
their ImageNet values), the remaining blocks, the bottleneck, the transformer and the heads run here. For the same
crops it computes what :class:`~.actor.TrainingForward` computes from the images, up to the float16 storage of the
features (``test/test_training_cache.py``).
"""
import torch
from torch import nn

#: Batch keys the cached forward reads, in argument order (the sampler's items: :mod:`.pair_sampler`).
CACHED_INPUT_KEYS = ('template_feats', 'template_masks', 'search_feat', 'search_mask')


def cached_trainable_prefixes(network, cached_blocks):
    """Backbone parameter-name prefixes that still train on cached features: the blocks from ``cached_blocks`` on.

    Raises:
        ValueError: the network has no EfficientNet backbone (only ``lite0`` can train from a cache).
    """
    body = getattr(network.backbone[0], 'body', None)
    if body is None or not hasattr(network.backbone[0], 'forward_suffix'):
        raise ValueError('training from cached features needs the lite0 (EfficientNet) backbone, not STARK-%s'
                         % network.variant.upper())
    return tuple('backbone.0.body._blocks.%d.' % i for i in range(cached_blocks, len(body._blocks)))


class CachedTrainingForward(nn.Module):
    """``forward(template_feats, template_masks, search_feat, search_mask)`` -> the network's output dict.

    Args:
        network: a ``lite0`` :class:`~stark_ros.model.Stark`.
        cached_blocks: backbone blocks already applied to the cached features.
        channels_last: NHWC memory order for the convolutions (faster on CPU).

    Shapes: template_feats (B, T, C, ht, wt) float16/float32, template_masks (B, T, ht, wt) bool (True =
    padding), search_feat (B, C, hs, ws), search_mask (B, hs, ws). Returns ``pred_boxes`` (B, 4) cxcywh normalised
    to the search region and ``pred_logits`` (B, 1, 1) or None, as :class:`~.actor.TrainingForward`.

    Raises:
        ValueError: T differs from the network's number of templates.
    """

    input_keys = CACHED_INPUT_KEYS

    def __init__(self, network, cached_blocks, channels_last=False):
        super().__init__()
        cached_trainable_prefixes(network, cached_blocks)       # raises for other backbones
        self.net = network
        self.cached_blocks = int(cached_blocks)
        self.channels_last = channels_last
        if channels_last:
            network.to(memory_format=torch.channels_last)

    def tokens(self, features, masks):
        """Cached features (B, C, h, w) + masks (B, h, w) -> the token dict of ``forward_backbone``."""
        dtype = next(self.net.bottleneck.parameters()).dtype
        features = features.to(dtype)
        if self.channels_last:
            features = features.contiguous(memory_format=torch.channels_last)
        features = self.net.backbone[0].forward_suffix(features, self.cached_blocks)
        return self.net.tokens_from_features(features, masks)

    def forward(self, template_feats, template_masks, search_feat, search_mask):
        num_templates = template_feats.shape[1]
        if num_templates != self.net.num_templates:
            raise ValueError('the batch has %d template(s) per sample, STARK-%s takes %d'
                             % (num_templates, self.net.variant.upper(), self.net.num_templates))
        tokens = [self.tokens(template_feats[:, i], template_masks[:, i]) for i in range(num_templates)]
        tokens.append(self.tokens(search_feat, search_mask))
        out = dict(self.net.forward_head(tokens))
        out['pred_boxes'] = out['pred_boxes'].reshape(-1, 4)
        return out
