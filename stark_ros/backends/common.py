"""Pieces shared by the inference backends: the engine base class, precision selection, fixed-shape graph wrappers.

An *engine* is what :class:`stark_ros.tracker.StarkTracker` drives: the contract is
:class:`stark_ros.tracker.engine.InferenceEngine`; every engine here satisfies it.
"""
import functools

import torch
from torch import nn

from ..model.backbone import BACKBONE_STRIDE
from ..cpu import available_cores
from ..model.lightning import StarkLightning

#: Precision names accepted by :func:`stark_ros.backends.build_engine`.
PRECISIONS = ('fp32', 'bf16', 'fp16', 'auto')


class Engine:
    """Base class: copies the network's interface attributes and describes itself.

    Attributes:
        backend: backend name ('torch', 'torch-fast', 'openvino', 'onnxruntime').
        precision: the precision actually used ('fp32', 'bf16' or 'fp16').
        variant, num_templates, has_score_head, feat_sz: as on the network.
        template_size, search_size: patch sides the engine was built for (pixels).
        fixed_template_size: the only template size the engine can take (a learned position table, a compiled
            fixed-shape graph), or None when any multiple of 16 works.
        device: torch device the engine takes its inputs on and returns its outputs on.
        batching: True when ``forward_backbone`` on search regions and ``forward_head`` take a batch of several
            targets (B >= 1) in one call (:func:`stark_ros.tracker.multi_tracker.supports_batching`); False for
            exported graphs of batch 1 (an ONNX export directory written before the batch axis was dynamic).
    """

    backend = None
    batching = True

    def __init__(self, network, device, precision, template_size):
        self.variant = network.variant
        self.num_templates = network.num_templates
        self.has_score_head = network.has_score_head
        self.feat_sz = network.feat_sz
        self.search_size = search_size(network)
        self.template_size = int(template_size)
        self.fixed_template_size = getattr(network, 'fixed_template_size', None)
        self.device = torch.device(device)
        self.precision = precision

    def describe(self):
        """A short dict for logs and benchmark tables."""
        return {'backend': self.backend, 'precision': self.precision, 'variant': self.variant,
                'device': str(self.device)}

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join('%s=%s' % kv for kv in self.describe().items()))

    def backbone_graph(self, images, masks):
        """Name of the exported backbone graph for ``images`` (exported engines): 'backbone_template' (batch 1) or
        'backbone_search' (batch B >= 1 when :attr:`batching`, else 1).

        Args:
            images: (B, 3, S, S), S the template or the search size.
            masks: (B, S, S).
        Raises:
            ValueError: other shapes, or a batch the graph does not take.
        """
        size = images.shape[-1]
        key = {self.template_size: 'backbone_template', self.search_size: 'backbone_search'}.get(size)
        largest = None if key == 'backbone_search' and self.batching else 1
        batch = images.shape[0] if images.dim() == 4 else 0
        if (key is None or tuple(images.shape[1:]) != (3, size, size) or batch < 1
                or (largest is not None and batch > largest) or tuple(masks.shape) != (batch, size, size)):
            raise ValueError('the %s engine takes (1, 3, S, S) templates with S = %d and (%s, 3, S, S) search '
                             'regions with S = %d, and (B, S, S) masks; got images %s, masks %s'
                             % (self.backend, self.template_size, 'B' if self.batching else '1', self.search_size,
                                tuple(images.shape), tuple(masks.shape)))
        return key


@functools.lru_cache(maxsize=None)
def cpu_flags():
    """The CPU feature flags of this machine (from /proc/cpuinfo; empty set where it does not exist)."""
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_supports_bf16():
    """True when oneDNN can run bf16 convolutions/matmuls natively: avx512_bf16 or AMX, and mkldnn present.

    Without those instructions bf16 is emulated and slower than fp32, so 'auto' never picks it there.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    flags = cpu_flags()
    return bool({'avx512_bf16', 'amx_bf16'} & flags)


def resolve_precision(precision, device, supported=('fp32', 'bf16', 'fp16')):
    """Turn a requested precision (None, 'fp32', 'bf16', 'fp16', 'auto') into the one to use.

    ``None`` means 'fp32' (the reference numerics). 'auto' means bf16 on a CPU with native bf16, fp16 on CUDA,
    fp32 otherwise (restricted to ``supported``).

    Raises:
        ValueError: an unknown precision, or one the device/backend cannot run.
    """
    device = torch.device(device)
    if precision is None:
        return 'fp32'
    if precision not in PRECISIONS:
        raise ValueError('unknown precision %r (use %s)' % (precision, ', '.join(PRECISIONS)))
    if precision == 'auto':
        if device.type == 'cuda' and 'fp16' in supported:
            return 'fp16'
        if device.type == 'cpu' and cpu_supports_bf16() and 'bf16' in supported:
            return 'bf16'
        return 'fp32'
    if precision not in supported:
        raise ValueError('precision %r is not supported by this backend (supported: %s)'
                         % (precision, ', '.join(supported)))
    if precision == 'fp16' and device.type != 'cuda':
        raise ValueError("precision 'fp16' needs a CUDA device (use 'bf16' on CPU)")
    if precision == 'bf16' and device.type == 'cpu' and not torch.backends.mkldnn.is_available():
        raise ValueError("precision 'bf16' needs oneDNN (torch.backends.mkldnn), which this torch lacks")
    return precision


def default_threads():
    """CPU threads to use: the cores this process may run on (:func:`stark_ros.cpu.available_cores`: affinity and
    cgroup quota)."""
    return available_cores()


def token_count(size):
    """Tokens of a ``size x size`` patch at the backbone stride (16)."""
    return (size // BACKBONE_STRIDE) ** 2


def search_size(network):
    """Search patch side in pixels a network's corner head was built for (``feat_sz`` cells x stride)."""
    return network.feat_sz * BACKBONE_STRIDE


# ----------------------------------------------------------------------------- graph wrappers for export


class BackboneGraph(nn.Module):
    """``network.forward_backbone`` as a module with tuple outputs, for tracing/export at one fixed patch size.

    ``forward(image (B, 3, S, S) float32, mask (B, S, S) bool)`` ->
    ``(feat (L, B, C) float32, mask (B, L) bool, pos (L, B, C) float32)``, L = (S/16)^2 (B is 1 or dynamic in the
    exported graph: :data:`stark_ros.backends.export_onnx.BATCH_AXES`).

    For Lightning the position table is chosen here from ``size`` (fixed per graph): the network's own
    ``forward_backbone`` picks it from the traced feature-map size, which the TorchScript tracer does not give as
    a plain int.
    """

    output_names = ('feat', 'mask_tokens', 'pos')
    input_names = ('image', 'mask')

    def __init__(self, network, size):
        super().__init__()
        self.network = network
        self.size = int(size)
        self.train(False)   # also puts the network in eval mode; a module starts in training mode

    def forward(self, image, mask):
        net = self.network
        if isinstance(net, StarkLightning):
            features, feature_masks = net.backbone(image, mask)
            features = net.bottleneck(features)
            table = net.pos_emb_x if self.size == search_size(net) else net.pos_emb_z0
            return (features.flatten(2).permute(2, 0, 1), feature_masks.flatten(1),
                    table().expand(-1, features.shape[0], -1))
        tokens = net.forward_backbone(image, mask)
        return tokens['feat'], tokens['mask'], tokens['pos']


class HeadGraph(nn.Module):
    """Transformer + heads over the concatenated token sequence ``[template_1 ... template_n; search]``.

    ``forward(feat (L, B, C), mask (B, L) bool, pos (L, B, C))`` -> ``pred_boxes`` (cxcywh normalised, the
    network's own shape: (B, 1, 4) for S/ST, (B, 4) for Lightning) and, with a score head, ``pred_logits``
    (B, 1, 1).
    """

    input_names = ('feat', 'mask', 'pos')

    def __init__(self, network, template_tokens):
        super().__init__()
        self.network = network
        self.counts = [template_tokens] * network.num_templates + [network.feat_sz ** 2]
        self.train(False)

    @property
    def output_names(self):
        return ('pred_boxes', 'pred_logits') if self.network.has_score_head else ('pred_boxes',)

    @property
    def num_tokens(self):
        return sum(self.counts)

    def forward(self, feat, mask, pos):
        token_dicts, start = [], 0
        for count in self.counts:
            token_dicts.append({'feat': feat[start:start + count], 'mask': mask[:, start:start + count],
                                'pos': pos[start:start + count]})
            start += count
        out = self.network.forward_head(token_dicts)
        if self.network.has_score_head:
            return out['pred_boxes'], out['pred_logits']
        return out['pred_boxes']


def concat_tokens(token_dicts):
    """Concatenate token dicts along the sequence: ``(feat (L, B, C), mask (B, L), pos (L, B, C))``."""
    return (torch.cat([d['feat'] for d in token_dicts], dim=0),
            torch.cat([d['mask'] for d in token_dicts], dim=1),
            torch.cat([d['pos'] for d in token_dicts], dim=0))


def example_tokens(network, template_size, device='cpu'):
    """Graph inputs for tracing: (template image, template mask, search image, search mask, feat, mask, pos).

    The images are zero-mean noise with a padded border, so the mask logic is exercised during tracing.
    """
    generator = torch.Generator().manual_seed(0)
    search_side = search_size(network)
    z_img = torch.randn(1, 3, template_size, template_size, generator=generator).to(device)
    x_img = torch.randn(1, 3, search_side, search_side, generator=generator).to(device)
    z_mask = torch.zeros(1, template_size, template_size, dtype=torch.bool, device=device)
    x_mask = torch.zeros(1, search_side, search_side, dtype=torch.bool, device=device)
    z_mask[:, :, :16] = True
    x_mask[:, -40:, :] = True
    with torch.no_grad():
        z = network.forward_backbone(z_img, z_mask)
        x = network.forward_backbone(x_img, x_mask)
    feat, mask, pos = concat_tokens([z] * network.num_templates + [x])
    return z_img, z_mask, x_img, x_mask, feat, mask, pos
