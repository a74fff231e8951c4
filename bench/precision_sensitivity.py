#!/usr/bin/env python3
"""Where reduced precision moves the boxes: bf16 or fp16 rounding emulated part by part, box deviation on the
oracle forced run.

Usage (from the repository root)::

    python bench/precision_sensitivity.py                  # bf16, ST50, synthetic weights (the oracle's)
    python bench/precision_sensitivity.py --dtype fp16     # the CUDA fp16 path's numerics, without a GPU
    python bench/precision_sensitivity.py --variant lightning
    python bench/precision_sensitivity.py --variant st50 --checkpoint STARKST_ep0050.pth.tar --engines ''

Method. A copy of the network, with its batch norms folded (:mod:`stark_ros.backends.folding`), runs in fp32
except where a *part* is set to the reduced type (``--dtype``: bf16, 8-bit significand; fp16, 11-bit significand
and a range up to 65504, beyond which values become inf). In such a part every matrix product and convolution
takes operands (inputs and weights) rounded to that type and accumulates in fp32, which is what avx512_bf16 and
AMX kernels do for bf16 and tensor cores do for fp16 under autocast. The parts:

* ``backbone``: the backbone convolutions and the 1x1 input projection (``bottleneck``);
* ``encoder.attention``: the encoder's attention (query/key/value/output projections, the two attention
  products);
* ``encoder.ffn``: the encoder's feed-forward layers;
* ``decoder``: every product of the decoder;
* ``box_head``: the corner head's convolutions;
* ``score_head``: the score MLP (ST variants);
* ``activations``: every stored layer output (linear, convolution, attention, LayerNorm) rounded to the reduced
  type, as a reduced-precision engine stores its activations (OpenVINO's bf16 mode does; PyTorch autocast keeps
  LayerNorm outputs and the residual stream in fp32).

The similarity product of the corner head's input (``Stark._box_from_tokens``) and the soft-argmax stay fp32.
The deviation is the one ``bench_tracker.py`` reports: the largest |box - fp32 box| in pixels over the oracle's
teacher-forced sequence (``forced_state_in`` sets the state before every frame, so errors do not propagate).
Without ``--checkpoint`` the weights are the deterministic synthetic ones of the oracle; with one, the same
frames and forced states are used and the reference is that checkpoint's own eager fp32 run.

Prints, per part: the deviation with only that part reduced and with every part but that one; then all parts,
and the measured deviation of the real engines of that precision (``--engines``) for comparison with the
emulation. A non-finite deviation means the reduced type overflowed (fp16).
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from bench_tracker import ORACLES, oracle_forced_boxes  # noqa: E402
from stark_ros.backends import build_engine, cpu_supports_bf16  # noqa: E402
from stark_ros.cpu import available_cores  # noqa: E402
from stark_ros.backends.folding import fold_batchnorms  # noqa: E402
from stark_ros.model import load_network  # noqa: E402

PARTS = ('backbone', 'encoder.attention', 'encoder.ffn', 'decoder', 'box_head', 'score_head', 'activations')


DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


class ReducedParts:
    """The set of parts currently emulated in the reduced type, shared by all emulating modules of one network.

    Args:
        dtype: 'bf16' or 'fp16'.
    """

    def __init__(self, dtype='bf16'):
        if dtype not in DTYPES:
            raise ValueError('dtype must be one of %s, got %r' % (', '.join(DTYPES), dtype))
        self.dtype = DTYPES[dtype]
        self.parts = set()

    def round(self, x):
        """``x`` rounded to the nearest value of the reduced type (round-to-nearest-even; fp16 overflows to inf),
        returned as float32."""
        return x.to(self.dtype).float()

    def set(self, parts):
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError('unknown parts %s (known: %s)' % (sorted(unknown), ', '.join(PARTS)))
        self.parts = set(parts)

    def operands(self, part, *tensors):
        """The tensors, rounded to the reduced type when ``part`` is emulated."""
        return tensors if part not in self.parts else tuple(self.round(t) for t in tensors)

    def stored(self, x):
        """A layer output as a reduced-precision engine would store it ('activations' part)."""
        return self.round(x) if 'activations' in self.parts else x


class EmulatedLinear(nn.Module):
    """``nn.Linear`` with reduced operands and fp32 accumulation when its part is emulated. (..., in) -> (..., out)."""

    def __init__(self, linear, part, state):
        super().__init__()
        self.linear, self.part, self.state = linear, part, state

    def forward(self, x):
        x, weight = self.state.operands(self.part, x, self.linear.weight)
        return self.state.stored(F.linear(x, weight, self.linear.bias))


class EmulatedConv2d(nn.Module):
    """``nn.Conv2d`` (zero padding) with reduced operands and fp32 accumulation when its part is emulated."""

    def __init__(self, conv, part, state):
        super().__init__()
        if conv.padding_mode != 'zeros':
            raise ValueError('only zero-padded convolutions are emulated, got %r' % conv.padding_mode)
        self.conv, self.part, self.state = conv, part, state

    def forward(self, x):
        c = self.conv
        x, weight = self.state.operands(self.part, x, c.weight)
        return self.state.stored(F.conv2d(x, weight, c.bias, c.stride, c.padding, c.dilation, c.groups))


class EmulatedLayerNorm(nn.Module):
    """``nn.LayerNorm`` computed in fp32 whose output is stored in the reduced type under 'activations'."""

    def __init__(self, norm, state):
        super().__init__()
        self.norm, self.state = norm, state

    def forward(self, x):
        return self.state.stored(self.norm(x))


class EmulatedAttention(nn.Module):
    """Drop-in for ``nn.MultiheadAttention`` (batch_first=False, packed in-projection, no bias_k/v, eval mode).

    ``forward(query (Lq, B, C), key (Lk, B, C), value (Lk, B, C), key_padding_mask (B, Lk) bool or None,
    need_weights=False)`` returns ``(out (Lq, B, C), None)``. The products (in-projections, ``q k^T / sqrt(d)``,
    ``softmax . v``, out-projection) take reduced operands when the part is emulated; every projection output
    and the attention output are stored in the reduced type under 'activations'. Formula: Vaswani et al. 2017, section 3.2, as
    ``nn.MultiheadAttention`` computes it (STARK_FACTS.md section 5).
    """

    def __init__(self, mha, part, state):
        super().__init__()
        if mha.in_proj_weight is None or mha.bias_k is not None or getattr(mha, 'batch_first', False):
            raise ValueError('EmulatedAttention needs a packed in-projection without bias_k/bias_v, sequence first')
        self.mha, self.part, self.state = mha, part, state

    def _project(self, x, weight, bias):
        x, weight = self.state.operands(self.part, x, weight)
        return self.state.stored(F.linear(x, weight, bias))

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False):
        if need_weights:
            raise ValueError('EmulatedAttention does not return attention weights')
        m = self.mha
        heads, length, batch = m.num_heads, query.shape[0], query.shape[1]
        head_dim = m.embed_dim // heads
        wq, wk, wv = m.in_proj_weight.chunk(3)
        bq, bk, bv = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None, None, None)
        q = self._project(query, wq, bq).reshape(length, batch * heads, head_dim).transpose(0, 1)
        k = self._project(key, wk, bk).reshape(key.shape[0], batch * heads, head_dim).transpose(0, 1)
        v = self._project(value, wv, bv).reshape(value.shape[0], batch * heads, head_dim).transpose(0, 1)
        q, k = self.state.operands(self.part, q * head_dim ** -0.5, k)
        scores = torch.bmm(q, k.transpose(1, 2))                                  # (B*H, Lq, Lk)
        if key_padding_mask is not None:
            scores = scores.view(batch, heads, length, -1).masked_fill(
                key_padding_mask[:, None, None, :], float('-inf')).view(batch * heads, length, -1)
        weights, v = self.state.operands(self.part, torch.softmax(scores, dim=-1), v)
        out = self.state.stored(torch.bmm(weights, v).transpose(0, 1).reshape(length, batch, m.embed_dim))
        out, weight = self.state.operands(self.part, out, m.out_proj.weight)
        return self.state.stored(F.linear(out, weight, m.out_proj.bias)), None


def part_of(path):
    """The part a module belongs to, from its dotted path in the network; None outside every part."""
    if path.startswith(('backbone', 'bottleneck')):
        return 'backbone'
    if path.startswith('transformer.encoder'):
        return 'encoder.attention' if '_attn' in path else 'encoder.ffn'
    if path.startswith('transformer.decoder'):
        return 'decoder'
    if path.startswith('box_head'):
        return 'box_head'
    if path.startswith('cls_head'):
        return 'score_head'
    return None


def emulating_copy(network, dtype='bf16'):
    """(copy of ``network`` with folded batch norms and emulating modules, its :class:`ReducedParts`).

    With no part set the copy computes what the folded fp32 network computes. ``dtype``: 'bf16' or 'fp16'.
    """
    net = copy.deepcopy(network).eval().requires_grad_(False)
    fold_batchnorms(net)
    state = ReducedParts(dtype)

    def convert(module, prefix):
        for name, child in list(module.named_children()):
            path = prefix + name
            part = part_of(path)
            if part is not None and isinstance(child, nn.MultiheadAttention):
                setattr(module, name, EmulatedAttention(child, part, state))
            elif part is not None and isinstance(child, nn.Linear):
                setattr(module, name, EmulatedLinear(child, part, state))
            elif part is not None and isinstance(child, nn.Conv2d):
                setattr(module, name, EmulatedConv2d(child, part, state))
            elif part is not None and isinstance(child, nn.LayerNorm):
                setattr(module, name, EmulatedLayerNorm(child, state))
            else:
                convert(child, path + '.')

    convert(net, '')
    return net, state


def deviation(boxes, reference):
    """(max, p95 over frames of the per-frame max, mean) |box - reference| in pixels."""
    diff = np.abs(np.asarray(boxes) - np.asarray(reference))
    return float(diff.max()), float(np.percentile(diff.max(axis=1), 95)), float(diff.mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--variant', default='st50', choices=sorted(ORACLES))
    parser.add_argument('--dtype', default='bf16', choices=sorted(DTYPES))
    parser.add_argument('--checkpoint', default=None, help='official-format checkpoint (default: synthetic)')
    parser.add_argument('--engines', default=None,
                        help="comma-separated real engines of that precision to compare (default for bf16: "
                             "openvino and torch-fast where the CPU has native bf16; none for fp16, a CUDA "
                             "precision; '' for none)")
    parser.add_argument('--threads', type=int, default=available_cores())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    network, _ = load_network(args.checkpoint, args.variant, 'cpu')
    reference = oracle_forced_boxes(build_engine(network, 'torch', precision='fp32'), args.variant)
    if reference is None:
        parser.error('the oracle file %s is missing (needed for its frames and forced states)'
                     % ORACLES[args.variant])
    emulated, state = emulating_copy(network, args.dtype)
    engine = build_engine(emulated, 'torch', precision='fp32')
    present = [p for p in PARTS if p == 'activations' or any(
        getattr(m, 'part', None) == p for m in emulated.modules())]

    def measure(parts):
        state.set(parts)
        return deviation(oracle_forced_boxes(engine, args.variant), reference)

    print('%s sensitivity, %s (%s weights): box deviation from fp32 in px on the oracle forced run'
          % (args.dtype, args.variant, 'checkpoint' if args.checkpoint else 'synthetic'))
    print('%-28s %8s %8s %8s' % ('parts in %s' % args.dtype, 'max', 'p95', 'mean'))
    print('%-28s %8.3f %8.3f %8.3f' % (('none (folded fp32)',) + measure(())))
    for part in present:
        print('%-28s %8.3f %8.3f %8.3f' % (('only ' + part,) + measure([part])))
    for part in present:
        print('%-28s %8.3f %8.3f %8.3f' % (('all but ' + part,) + measure([p for p in present if p != part])))
    print('%-28s %8.3f %8.3f %8.3f' % (('all',) + measure(present)))
    specs = args.engines
    if specs is None:
        specs = 'openvino,torch-fast' if args.dtype == 'bf16' and cpu_supports_bf16() else ''
    for spec in filter(None, specs.split(',')):
        options = {'threads': args.threads} if spec == 'openvino' else {}
        boxes = oracle_forced_boxes(build_engine(network, spec, precision=args.dtype, **options), args.variant)
        print('%-28s %8.3f %8.3f %8.3f' % (('measured %s:%s' % (spec, args.dtype),) + deviation(boxes, reference)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
