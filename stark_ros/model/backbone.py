"""ResNet backbone of STARK, truncated after ``layer3`` (total stride 16, 1024 channels).

Source: STARK_FACTS.md section 2 (official ``lib/models/stark/backbone.py`` and ``resnet.py``): torchvision-style
ResNet v1.5 (stride on the 3x3 conv of a stage's first block), stem 7x7/2 conv without bias -> BN -> ReLU ->
3x3/2 max-pool, blocks R50 = [3, 4, 6], R101 = [3, 4, 23], every norm a frozen batch norm.
Parameter names equal torchvision's (``conv1``, ``bn1``, ``layerN.i.conv1..3``, ``bnN``, ``downsample.0/1``).
"""
import torch
from torch import nn
import torch.nn.functional as F

#: Blocks per stage (layer1..layer3) for the supported depths.
RESNET_BLOCKS = {50: (3, 4, 6), 101: (3, 4, 23)}
#: Channels out of ``layer3``.
BACKBONE_CHANNELS = 1024
#: Total stride of the truncated backbone, pixels per feature cell.
BACKBONE_STRIDE = 16


def downsample_mask(masks, size):
    """Padding mask at feature resolution: (B, H, W) bool -> (B, h, w) bool, ``size`` = (h, w).

    Nearest interpolation, which samples input pixel ``(H/h)*i`` (the top-left pixel of every cell), as the
    official backbone does (STARK_FACTS.md section 2); used by every backbone.
    """
    return F.interpolate(masks[None].float(), size=size).to(torch.bool)[0]


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters, all stored as buffers.

    ``y = x * s + b`` with ``s = weight * (running_var + eps) ** -0.5`` and ``b = bias - running_mean * s``
    (STARK_FACTS.md section 2). No ``num_batches_tracked``: a checkpoint's copy of it is ignored by the loader.

    Args:
        num_features: channels C of the (B, C, H, W) input.
        eps: added to the variance (1e-5, as in the official code).
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer('weight', torch.ones(num_features))
        self.register_buffer('bias', torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features))

    def scale_and_shift(self):
        """Per-channel (scale, shift), each of shape (C,), so that ``y = x * scale + shift``."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x):
        scale, shift = self.scale_and_shift()
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def bn_scale_shift(bn):
    """Per-channel ``(scale, shift)`` of an eval-mode batch norm, so that ``bn(x) == x * scale + shift``.

    Raises:
        ValueError: a regular batch norm without running statistics (its output depends on the batch).
    """
    if isinstance(bn, FrozenBatchNorm2d):
        return bn.scale_and_shift()
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError('cannot fold a batch norm without running statistics')
    weight = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    scale = weight * (bn.running_var + bn.eps).rsqrt()
    return scale, bias - bn.running_mean * scale


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck block: 1x1 -> 3x3 (carries the stride) -> 1x1 (x4 channels), residual, ReLU."""

    expansion = 4

    def __init__(self, in_channels, width, stride=1, downsample=None):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = FrozenBatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


class ResNetBody(nn.Module):
    """Stem + layer1..layer3 of a ResNet; (B, 3, H, W) -> (B, 1024, H/16, W/16) for H, W multiples of 16."""

    def __init__(self, depth):
        super().__init__()
        if depth not in RESNET_BLOCKS:
            raise ValueError('unsupported ResNet depth %r (supported: %s)' % (depth, sorted(RESNET_BLOCKS)))
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU()  # a module (no parameters) so an engine can fuse it into conv1
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        for index, (blocks, width, stride) in enumerate(zip(RESNET_BLOCKS[depth], (64, 128, 256), (1, 2, 2))):
            layer, in_channels = _make_layer(in_channels, width, blocks, stride)
            self.add_module('layer%d' % (index + 1), layer)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


def _make_layer(in_channels, width, blocks, stride):
    out_channels = width * Bottleneck.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                   FrozenBatchNorm2d(out_channels))
    layers = [Bottleneck(in_channels, width, stride, downsample)]
    layers += [Bottleneck(out_channels, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers), out_channels


class Backbone(nn.Module):
    """The truncated ResNet plus the padding mask brought to feature resolution.

    ``forward(images, masks)``: images (B, 3, H, W) float, normalised; masks (B, H, W) bool, True = padded pixel.
    Returns ``(features (B, 1024, H/16, W/16), feature_masks (B, H/16, W/16) bool)``. The mask is down-sampled
    with nearest interpolation, which samples input pixel ``16*i`` (STARK_FACTS.md section 2).
    """

    #: Stages that training updates (official rule: stem and layer1 stay frozen; STARK_FACTS.md section 12b).
    trainable_layers = ('layer2', 'layer3')

    def __init__(self, depth):
        super().__init__()
        self.body = ResNetBody(depth)
        self.num_channels = BACKBONE_CHANNELS

    def trainable_prefixes(self):
        """Parameter-name prefixes (relative to this module) of the trainable part: ``body.layer2.``, ..."""
        return tuple('body.%s.' % name for name in self.trainable_layers)

    def forward(self, images, masks):
        features = self.body(images)
        return features, downsample_mask(masks, features.shape[-2:])


def build_backbone(depth=50):
    """Build the frozen-BN ResNet-``depth`` backbone truncated after layer3 (depth 50 or 101)."""
    return Backbone(depth)
