"""Fold batch norms into the convolutions in front of them (inference only).

A batch norm in eval mode is a per-channel affine map ``y = x * scale + shift`` with
``scale = weight / sqrt(running_var + eps)`` and ``shift = bias - running_mean * scale``. Applied to a convolution
``x = conv(u) = W * u + b`` it gives one convolution with kernel ``W * scale`` (per output channel) and bias
``b * scale + shift`` (``shift`` alone when the convolution has no bias). This holds for the frozen batch norms of
the ResNet backbone and for the regular (eval-statistics) batch norms of the corner head alike.

In fp32 the folded network differs from the original only by rounding (measured on ST50 frame 1: < 1e-5 relative on
the backbone features, far inside the 1e-2 px box tolerance of the oracles).
"""
import torch
from torch import nn

from ..model.backbone import Bottleneck, FrozenBatchNorm2d, ResNetBody, bn_scale_shift
from ..model.efficientnet import EfficientNetLite, MBConvBlock
from ..model.lightning import RepVGGBlock, fuse_repvgg

_BATCH_NORMS = (FrozenBatchNorm2d, nn.BatchNorm2d)


@torch.no_grad()
def fold_conv_bn(conv, bn):
    """A new :class:`nn.Conv2d` (with bias) equal to ``bn(conv(x))`` for an eval-mode ``bn``."""
    if bn.running_mean is not None and bn.running_mean.numel() != conv.out_channels:
        raise ValueError('batch norm of %d channels after a conv with %d outputs'
                         % (bn.running_mean.numel(), conv.out_channels))
    scale, shift = bn_scale_shift(bn)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused = fused.to(device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    fused.bias.copy_(bias.to(conv.weight.dtype))
    fused.requires_grad_(False)
    return fused


@torch.no_grad()
def fold_same_padding(pad, conv):
    """A symmetric-padding :class:`nn.Conv2d` equal to ``conv(pad(x))`` for a TensorFlow 'SAME' stride-2 pad.

    For a stride-2 kxk conv on an even input, 'SAME' pads ``b = (k - 2) // 2`` before, so output i reads input
    rows ``2i - b .. 2i - b + k - 1``. A (k+2)x(k+2) kernel with padding ``k // 2 + 1`` reads
    ``2i - k // 2 - 1 .. 2i + k // 2 + 1``; placing the kxk kernel at offset 2 (zeros in the first two rows and
    columns) reads exactly the same pixels, with the same zero padding, and gives the same output size n / 2.
    This saves the padded copy of the (largest) activation for some extra multiply-adds by zero. Valid for even
    input sizes, which every multiple-of-16 patch gives at every stride-2 layer up to stride 16.

    Args:
        pad: :class:`stark_ros.model.efficientnet.SamePad` with stride 2.
        conv: the stride-2 conv after it, ``padding=0``.
    Raises:
        ValueError: another stride or a conv that already pads.
    """
    if pad.stride != 2 or tuple(conv.stride) != (2, 2) or tuple(conv.padding) != (0, 0) or pad.kernel % 2 == 0:
        raise ValueError('fold_same_padding handles odd-kernel stride-2 convs with padding 0 only')
    k = pad.kernel
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, k + 2, 2, k // 2 + 1, groups=conv.groups,
                      bias=conv.bias is not None).to(device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.zero_()
    fused.weight[:, :, 2:, 2:] = conv.weight
    if conv.bias is not None:
        fused.bias.copy_(conv.bias)
    fused.requires_grad_(False)
    return fused


def _fold_named_pairs(module, pairs):
    folded = 0
    for conv_name, bn_name in pairs:
        conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, _BATCH_NORMS):
            setattr(module, conv_name, fold_conv_bn(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded


def _fold_sequential(seq):
    folded = 0
    names = list(seq._modules)
    for first, second in zip(names[:-1], names[1:]):
        conv, bn = seq._modules[first], seq._modules[second]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, _BATCH_NORMS):
            seq._modules[first] = fold_conv_bn(conv, bn)
            seq._modules[second] = nn.Identity()
            folded += 1
    return folded


def fold_batchnorms(network):
    """Fold every batch norm of a STARK network into its convolution, in place; returns the number folded.

    * ResNet stem (``conv1``/``bn1``) and bottlenecks (``convN``/``bnN``, ``downsample.0``/``downsample.1``);
    * EfficientNet-Lite stem/head (``_conv_stem``/``_bn0``, ``_conv_head``/``_bn1``) and MBConv blocks
      (``_expand_conv``/``_bn0``, ``_depthwise_conv``/``_bn1``, ``_project_conv``/``_bn2``), and their 'SAME'
      stride-2 paddings into the convolutions (:func:`fold_same_padding`; inputs of even size);
    * the corner head's ``conv -> BatchNorm2d -> ReLU`` sequences;
    * Lightning's RepVGG blocks, through :func:`stark_ros.model.fuse_repvgg` (branches and their batch norms into
      one 3x3 conv; STARK_FACTS.md section 14b).

    The folded batch norms become :class:`nn.Identity`, so the modules' own ``forward`` code still runs.

    Raises:
        RuntimeError: a batch norm is left that this function does not know how to fold (the network would
            then be only partly folded; better to know).
    """
    if any(isinstance(m, RepVGGBlock) and not hasattr(m, 'rbr_reparam') for m in network.modules()):
        fuse_repvgg(network)
    folded = 0
    for module in list(network.modules()):
        if isinstance(module, ResNetBody):
            folded += _fold_named_pairs(module, [('conv1', 'bn1')])
        elif isinstance(module, Bottleneck):
            folded += _fold_named_pairs(module, [('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3')])
        elif isinstance(module, EfficientNetLite):
            folded += _fold_named_pairs(module, [('_conv_stem', '_bn0'), ('_conv_head', '_bn1')])
            module._stem_pad, module._conv_stem = None, fold_same_padding(module._stem_pad, module._conv_stem)
        elif isinstance(module, MBConvBlock):
            folded += _fold_named_pairs(module, [('_expand_conv', '_bn0'), ('_depthwise_conv', '_bn1'),
                                                 ('_project_conv', '_bn2')])
            if module._pad is not None:
                module._pad, module._depthwise_conv = None, fold_same_padding(module._pad, module._depthwise_conv)
        elif isinstance(module, nn.Sequential):
            folded += _fold_sequential(module)
    left = [name for name, m in network.named_modules() if isinstance(m, _BATCH_NORMS)]
    if left:
        raise RuntimeError('batch norms left unfolded: %s' % ', '.join(left[:5]))
    return folded
