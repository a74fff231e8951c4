"""PyTorch engines: ``torch`` (eager fp32, the reference) and ``torch-fast`` (folded, channels-last, bf16/fp16).

``torch`` -- :class:`TorchEngine`
    The network as loaded, run eagerly in fp32. Numerical contract: this *is* the reference; it reproduces the
    official oracles with the core tolerances (boxes 1e-2 px, scores 1e-4; ``test/test_tracker_oracle.py``).

``torch-fast`` -- :class:`TorchFastEngine`
    A private copy of the network with

    * every batch norm folded into the convolution before it (:mod:`.folding`; Lightning's RepVGG branches too),
    * the convolutional parts (backbone body, bottleneck, corner-head towers) in channels-last memory format,
    * ``torch.inference_mode``,
    * in fp32 on a CPU, oneDNN kernels (:mod:`.onednn`) for the matrix products of the transformer and score head
      (PyTorch's own ``nn.Linear`` calls MKL, which runs AMD CPUs at half speed) and for the convolutions, with
      ReLU and the residual additions fused and weights re-laid out once; the decoder's cross-attention of its
      single query skips the key/value projections of the 528-token memory (same value, reassociated),
    * precision 'bf16' (CPU with native bf16: avx512_bf16 or AMX) or 'fp16' (CUDA): the convolutional parts hold
      their weights in bf16/fp16 and run in it; the transformer and score head run under ``torch.autocast`` with
      bf16/fp16 copies of their linear weights, while the residual stream, the LayerNorms, the position encodings,
      the corner score maps, the soft-argmax, the box arithmetic and the score sigmoid stay in fp32. Every output
      is float32.
    * optional ``torch.compile`` with inductor freezing (``compile=True``, instead of the oneDNN modules); off by
      default: on a 2-core CPU it took 25-40 s to compile and was measured before the oneDNN modules existed
      (``bench/README.md``).

    Numerical contract: with precision 'fp32' the only change is the folding (rounding), so the oracles hold with
    the core tolerances (boxes 1e-2 px, scores 1e-4). With 'bf16', on the ST50 and Lightning oracle forced runs,
    the boxes stay within 1.44 / 1.36 px of fp32 on the worst frame (p95 0.99 / 0.87 px, mean 0.40 / 0.26 px) and the
    scores within 0.004, with identical template-update decisions. The tests enforce max 2 px, p95 1.3 px,
    mean 0.6 px and scores 0.02 (``test/test_backends.py`` explains the choice). fp16 (CUDA) is not run here
    (no GPU); its rounding and range are emulated on the CPU by ``bench/precision_sensitivity.py --dtype fp16``:
    with every part and every stored activation in fp16, the ST50 / Lightning forced-run boxes stay within
    0.30 / 0.23 px of fp32 and nothing overflows (``test/test_precision_sensitivity.py`` bounds Lightning at
    1 px).
"""
import copy

import torch
from torch import nn

from ..model.lightning import StarkLightning
from .common import Engine, resolve_precision
from .folding import fold_batchnorms
from .onednn import OneDnnConv, onednn_linear_available, use_onednn_convolutions, use_onednn_products

#: Parts that run in the reduced precision (bf16/fp16) by default; the others stay fp32.
REDUCED_PARTS = ('backbone', 'transformer', 'box_head')
_DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def _network_device(network):
    return next(network.parameters()).device


class TorchEngine(Engine):
    """The eager fp32 network behind the engine interface (the reference). Adds ``device`` and ``backend``."""

    backend = 'torch'

    def __init__(self, network, device=None, precision=None, template_size=128):
        device = torch.device(device) if device is not None else _network_device(network)
        precision = resolve_precision(precision, device, supported=('fp32',))
        super().__init__(network, device, precision, template_size)
        self.network = network.to(device).eval()

    def forward_backbone(self, images, masks):
        return self.network.forward_backbone(images, masks)

    def forward_head(self, token_dicts):
        return self.network.forward_head(token_dicts)


class CastModule(nn.Module):
    """Runs ``module`` in ``dtype`` (and channels-last), casting its input in and, optionally, its output back.

    Args:
        module: a convolutional module, already converted to ``dtype``.
        dtype: compute dtype.
        channels_last: convert the (4-D) input to channels-last.
        out_dtype: dtype of the output (None: leave it in ``dtype``).
    """

    def __init__(self, module, dtype, channels_last, out_dtype=None):
        super().__init__()
        self.module = module
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.out_dtype = out_dtype

    def forward(self, x):
        y = self.module(x.to(dtype=self.dtype, memory_format=self.memory_format))
        return y if self.out_dtype is None else y.to(self.out_dtype)


def _conv_part(module, dtype, channels_last, cast_in=True, cast_out=True):
    module = module.to(dtype)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if not cast_in:
        return module
    return CastModule(module, dtype, channels_last, torch.float32 if cast_out else None)


class _CastOut(nn.Module):
    """Casts a module's output to float32 (the module itself keeps its dtype)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x).float().contiguous()


def _linear_weights_to(module, dtype):
    """Linear layers and attention projections of ``module`` hold ``dtype`` weights (LayerNorms stay fp32)."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            sub.to(dtype)
        elif isinstance(sub, nn.MultiheadAttention):
            for name in ('in_proj_weight', 'in_proj_bias', 'q_proj_weight', 'k_proj_weight', 'v_proj_weight',
                         'bias_k', 'bias_v'):
                param = getattr(sub, name, None)
                if param is not None:
                    param.data = param.data.to(dtype)


class TorchFastEngine(Engine):
    """Optimised PyTorch inference (see the module docstring for what is changed and the numerical contract).

    Args:
        network: a loaded :class:`stark_ros.model.Stark` or :class:`StarkLightning` (not modified: copied).
        device: torch device (default: the network's).
        precision: None/'fp32', 'bf16' (CPU), 'fp16' (CUDA) or 'auto' (see :func:`.common.resolve_precision`).
        template_size: template patch side, pixels.
        channels_last: channels-last memory format for the convolutional parts (default True).
        compile: wrap the backbone and the head in ``torch.compile`` (default False).
        reduced_parts: with bf16/fp16, the parts that use it (default all: 'backbone', 'transformer', 'box_head');
            the others stay fp32. A reduced transformer implies a reduced box head (both run under autocast).
        onednn: on a CPU, run the parts that stay fp32 (all of them with precision 'fp32') on oneDNN kernels
            (:mod:`.onednn`; default True, used only where :func:`.onednn.onednn_linear_available`, and not with
            ``compile=True``, where inductor lowers to oneDNN itself).
    """

    backend = 'torch-fast'

    def __init__(self, network, device=None, precision=None, template_size=128, channels_last=True, compile=False,
                 reduced_parts=REDUCED_PARTS, onednn=True):
        device = torch.device(device) if device is not None else _network_device(network)
        precision = resolve_precision(precision, device)
        super().__init__(network, device, precision, template_size)
        self.dtype = _DTYPES[precision]
        self.channels_last = channels_last
        self.compiled = bool(compile)
        unknown = set(reduced_parts) - set(REDUCED_PARTS)
        if unknown:
            raise ValueError('unknown parts %s (known: %s)' % (sorted(unknown), ', '.join(REDUCED_PARTS)))
        self.reduced_parts = tuple(p for p in REDUCED_PARTS if p in reduced_parts) if self.dtype != torch.float32 \
            else ()
        # with compile=True inductor does its own oneDNN lowering (and cannot lower these modules' packed weights)
        self.onednn_products = (bool(onednn) and not compile and len(self.reduced_parts) < len(REDUCED_PARTS)
                                and onednn_linear_available(device))
        net = copy.deepcopy(network).to(device).eval().requires_grad_(False)
        self.folded = fold_batchnorms(net)
        self._convert(net)
        self.network = net
        self._backbone = net.forward_backbone
        self._head = net.forward_head
        if compile:
            # freezing: inductor treats the weights as constants (constant folding, oneDNN weight prepacking)
            options = {'freezing': True} if device.type == 'cpu' else None
            self._backbone = torch.compile(self._backbone, dynamic=False, options=options)
            self._head = torch.compile(self._head, dynamic=False, options=options)

    def _convert(self, net):
        cl = self.channels_last
        dtypes = {part: self.dtype if part in self.reduced_parts else torch.float32 for part in REDUCED_PARTS}
        if self.onednn_products:        # the parts that stay fp32
            if dtypes['backbone'] == torch.float32:
                use_onednn_convolutions(net.backbone)
                if isinstance(net.bottleneck, nn.Conv2d):       # the 1x1 input projection (STARK_FACTS.md 3)
                    net.bottleneck = OneDnnConv(net.bottleneck)
                else:
                    use_onednn_convolutions(net.bottleneck)
            if dtypes['box_head'] == torch.float32:
                use_onednn_convolutions(net.box_head)
        dtype = dtypes['backbone']
        if isinstance(net, StarkLightning):
            net.backbone.body = _conv_part(net.backbone.body, dtype, cl)
            net.bottleneck = _conv_part(net.bottleneck, dtype, cl)
            net.box_head.conv_tower = _conv_part(net.box_head.conv_tower, dtypes['box_head'], cl)
        else:
            trunk = net.backbone[0]     # ResNet or EfficientNet-Lite (its input renormalisation stays fp32)
            trunk.body = _conv_part(trunk.body, dtype, cl)
            net.bottleneck = _conv_part(net.bottleneck, dtype, cl)
            head, dtype = net.box_head, dtypes['box_head']
            for corner in ('tl', 'br'):
                for index in range(1, 6):
                    name = 'conv%d_%s' % (index, corner)
                    part = _conv_part(getattr(head, name), dtype, cl, cast_in=index == 1, cast_out=False)
                    setattr(head, name, _CastOut(part) if index == 5 else part)
        if dtypes['transformer'] != torch.float32:
            _linear_weights_to(net.transformer, self.dtype)
            if getattr(net, 'has_score_head', False):
                _linear_weights_to(net.cls_head, self.dtype)
        elif self.onednn_products:
            use_onednn_products(net.transformer)
            if getattr(net, 'has_score_head', False):
                use_onednn_products(net.cls_head)

    def describe(self):
        out = super().describe()
        out.update(channels_last=self.channels_last, compiled=self.compiled, folded_batchnorms=self.folded,
                   reduced_parts=','.join(self.reduced_parts), onednn_products=self.onednn_products)
        return out

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled='transformer' in self.reduced_parts)

    @torch.inference_mode()
    def forward_backbone(self, images, masks):
        tokens = self._backbone(images, masks)
        return {'feat': tokens['feat'].float(), 'mask': tokens['mask'], 'pos': tokens['pos'].float()}

    @torch.inference_mode()
    def forward_head(self, token_dicts):
        with self._autocast():
            out = self._head(token_dicts)
        logits = out['pred_logits']
        return {'pred_boxes': out['pred_boxes'].float(), 'pred_logits': None if logits is None else logits.float()}
