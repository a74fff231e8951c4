"""Deterministic synthetic weights, for running and testing without a trained checkpoint.

Implements the value rule documented in ``shared/reference/make_checkpoint.py`` (the acceptance fixture's
weights), applied to a model's own ``state_dict()`` keys and shapes, so that for the same seed the tensors are
bit-identical to that script's output and the oracles in ``shared/reference`` apply. The rule, per key: draws
``N`` from ``numpy.random.default_rng(seed + crc32(key))`` in float64 and casts to float32 at the end;
``num_batches_tracked`` -> 0; ``running_mean`` -> 0.1N; ``running_var`` -> 1 + 0.1|N|; norm affine
(1-D weight/bias next to a ``running_mean`` or in a module named norm*/ln*/bn*) -> 1 + 0.1N / 0.1N; 2-D embedding
weights -> N; other tensors with ndim >= 2 -> N / sqrt(fan_in); 1-D biases -> 0.02N.

Synthetic weights produce meaningless boxes: they exist so the pipeline can run end to end on a fresh machine.
"""
import hashlib
import math
import re
import zlib
from collections import OrderedDict

import numpy as np
import torch

_NORM_MODULE = re.compile(r'^(norm|ln|bn)\d*$')


def _kind(key, shape, keys):
    module, _, leaf = key.rpartition('.')
    module_name = module.rpartition('.')[2]
    if leaf == 'num_batches_tracked':
        return 'count'
    if leaf in ('running_mean', 'running_var'):
        return leaf
    if leaf in ('weight', 'bias') and len(shape) == 1 and (
            module + '.running_mean' in keys or _NORM_MODULE.match(module_name)):
        return 'norm_' + leaf
    if leaf == 'weight' and len(shape) == 2 and 'embed' in module_name:
        return 'embedding'
    if len(shape) >= 2:
        return 'weight'
    if len(shape) == 1 and leaf.endswith('bias'):
        return 'bias'
    raise ValueError('no synthetic-weight rule for key %r with shape %r' % (key, shape))


def synthetic_state_dict(template, seed=0):
    """Synthetic weights for every entry of ``template`` (a state_dict, or a mapping key -> tensor).

    Args:
        template: ordered mapping key -> tensor whose shapes and dtypes are used (values are ignored).
        seed: integer seed; 0 is the seed of the shared oracles.
    Returns:
        OrderedDict key -> CPU tensor (float32, or int64 for ``num_batches_tracked``), in ``template`` order.
    Raises:
        ValueError: a key the rule does not cover.
    """
    keys = set(template)
    out = OrderedDict()
    for key, ref in template.items():
        shape = tuple(ref.shape)
        kind = _kind(key, shape, keys)
        if kind == 'count':
            out[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        rng = np.random.default_rng(seed + zlib.crc32(key.encode('utf-8')))
        n = rng.standard_normal(int(np.prod(shape)) if shape else 1).reshape(shape)
        if kind == 'running_mean':
            value = 0.1 * n
        elif kind == 'running_var':
            value = 1.0 + 0.1 * np.abs(n)
        elif kind == 'norm_weight':
            value = 1.0 + 0.1 * n
        elif kind == 'norm_bias':
            value = 0.1 * n
        elif kind == 'embedding':
            value = n
        elif kind == 'weight':
            value = n / math.sqrt(int(np.prod(shape[1:])))
        else:
            value = 0.02 * n
        out[key] = torch.from_numpy(np.ascontiguousarray(value.astype(np.float32)))
    return out


def state_dict_digest(state_dict):
    """sha256 over key, dtype, shape and little-endian bytes of every entry, in order (same as make_checkpoint.py).

    Two state dicts with the same digest hold bit-identical tensors under the same keys.
    """
    h = hashlib.sha256()
    for key, tensor in state_dict.items():
        a = tensor.detach().cpu().numpy()
        h.update(key.encode('utf-8') + b'\0' + str(a.dtype).encode() + b'\0' +
                 ','.join(str(s) for s in a.shape).encode() + b'\0')
        h.update(a.astype(a.dtype.newbyteorder('<'), copy=False).tobytes())
    return h.hexdigest()
