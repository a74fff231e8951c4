"""Checkpoint reading, format detection, MMTracking key mapping, variant inference and strict loading.

Formats (detected from the file, never from its name):

* official trainer checkpoints: a dict with ``'net'`` -> state_dict, possibly beside pickled objects of the
  official code base (``settings``, ``stats``) (STARK_FACTS.md section 13);
* MMTracking model-zoo checkpoints: ``{'meta': ..., 'state_dict': ...}``, keys under ``backbone.``, ``neck.``,
  ``head.``, mapped to official names (MMTRACK_FACTS.md sections 3 and 4); a stage-1 file has no score head;
* a bare official state_dict.

Checkpoints are untrusted pickles. Files are read with ``torch.load(weights_only=True)``; only when that refuses a
file because of a class it does not know, a restricted unpickler is used that rebuilds tensors and containers and
turns every other global into an inert placeholder, so no code from the file runs either way.
"""
import os
import pickle
import re
import zipfile
from collections import OrderedDict

import torch

from ..errors import CheckpointError
from .build import VARIANT_NAMES, build_network
from .default_model import SYNTHETIC, resolve_checkpoint
from .lightning import fuse_repvgg

# --------------------------------------------------------------------------------------------- reading


class InertObject:
    """Stand-in for any class a checkpoint names that is not tensor machinery; holds nothing, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


# Globals the restricted unpickler resolves for real: tensor rebuilding and plain containers.
_ALLOWED_GLOBALS = {
    ('collections', 'OrderedDict'): OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch._utils', '_rebuild_tensor'): torch._utils._rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
    ('torch', 'Size'): torch.Size,
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('builtins', 'tuple'): tuple,
    ('builtins', 'list'): list,
    ('builtins', 'dict'): dict,
}
#: Oldest torch whose ``torch.load(weights_only=True)`` is safe on untrusted files (CVE-2025-32434 affects < 2.6).
MIN_SAFE_TORCH = (2, 6)


def check_torch_version(version=None):
    """Refuse a torch older than :data:`MIN_SAFE_TORCH` for reading checkpoints.

    Args:
        version: a torch version string such as ``'2.5.1+cu121'``; default ``torch.__version__``.
    Raises:
        CheckpointError: the version is older than 2.6 (or cannot be read), naming the upgrade.
    """
    text = str(torch.__version__ if version is None else version)
    match = re.match(r'(\d+)\.(\d+)', text)
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_SAFE_TORCH:
        raise CheckpointError('torch %s cannot read checkpoints safely: torch.load(weights_only=True) executes code '
                              'from crafted files before torch 2.6 (CVE-2025-32434). Install torch >= 2.6 (the '
                              'project pins torch==2.13.0), e.g. pip install "torch>=2.6"' % text)


def _element_size(storage_type):
    """Bytes per element of a storage type from a checkpoint's persistent id (torch's ``StorageType`` or a storage
    class); 1 when it is unknown, so the bound below stays a bound on the element count."""
    dtype = getattr(storage_type, 'dtype', None)
    if isinstance(dtype, torch.dtype):
        return max(1, dtype.itemsize)
    return 1


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED_GLOBALS` and torch dtypes; every other global becomes an :class:`InertObject`
    class (storage classes too: torch's loader resolves the storage types it needs itself).

    ``max_storage_bytes`` bounds every storage the torch loader is asked to allocate through ``persistent_load``
    (``('storage', type, key, location, numel, ...)``): a checkpoint cannot hold a storage larger than itself, so a
    larger ``numel`` is refused before anything is allocated.
    """

    max_storage_bytes = None

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return type(name, (InertObject,), {'__module__': 'stark_ros.inert.' + module})

    # torch's loader assigns ``unpickler.persistent_load = its_function``; this property keeps the bound in front.
    @property
    def persistent_load(self):
        return self._bounded_persistent_load

    @persistent_load.setter
    def persistent_load(self, function):
        self._torch_persistent_load = function

    def _bounded_persistent_load(self, saved_id):
        loader = getattr(self, '_torch_persistent_load', None)
        if loader is None:
            raise pickle.UnpicklingError('persistent id outside a torch checkpoint')
        if isinstance(saved_id, tuple) and len(saved_id) >= 5 and saved_id[0] == 'storage':
            numel = saved_id[4]
            if not isinstance(numel, int) or numel < 0:
                raise pickle.UnpicklingError('storage with an invalid size %r' % (numel,))
            nbytes = numel * _element_size(saved_id[1])
            if self.max_storage_bytes is not None and nbytes > self.max_storage_bytes:
                raise pickle.UnpicklingError('a storage of %d bytes is larger than the checkpoint file (%d bytes)'
                                             % (nbytes, self.max_storage_bytes))
        return loader(saved_id)


def _restricted_pickle_module(max_storage_bytes):
    """A ``pickle_module`` for ``torch.load`` whose unpickler never imports or calls unknown globals and allocates no
    storage larger than ``max_storage_bytes``."""
    unpickler = type('BoundedUnpickler', (_RestrictedUnpickler,), {'max_storage_bytes': int(max_storage_bytes)})
    return type('RestrictedPickleModule', (), {
        'Unpickler': unpickler, 'UnpicklingError': pickle.UnpicklingError,
        'load': staticmethod(lambda file, **kwargs: unpickler(file, **kwargs).load())})


def read_checkpoint_file(path):
    """Unpickle a checkpoint without executing code from it.

    Zip-format files (torch >= 1.6) are read with ``torch.load(weights_only=True)``, which checks every storage
    against its record before allocating; when it refuses a class it does not know (e.g. the official trainer's
    pickled ``settings``), and for legacy (pre-zip) files, whose storages torch would allocate from the declared
    size, the restricted unpickler reads the file, with every storage bounded by the file's size.

    Args:
        path: file path.
    Returns:
        The unpickled top-level object (tensors on CPU); unknown classes become :class:`InertObject` instances.
    Raises:
        CheckpointError: the file is missing or is not a readable torch checkpoint, a storage is larger than the
            file, or torch is older than 2.6 (:func:`check_torch_version`).
    """
    if not os.path.isfile(path):
        raise CheckpointError('checkpoint file not found: %s' % path)
    check_torch_version()
    if zipfile.is_zipfile(path):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as safe_error:
            if 'GLOBAL' not in str(safe_error) and 'global' not in str(safe_error):
                raise CheckpointError('cannot read checkpoint %s: %s' % (path, safe_error)) from safe_error
        except Exception as error:  # noqa: BLE001 - torch raises many types for a corrupt file
            raise CheckpointError('cannot read checkpoint %s: %s' % (path, error)) from error
    try:  # unknown classes, or a legacy file
        return torch.load(path, map_location='cpu', weights_only=False,
                          pickle_module=_restricted_pickle_module(os.path.getsize(path)))
    except Exception as error:  # noqa: BLE001
        raise CheckpointError('cannot read checkpoint %s: %s' % (path, error)) from error


# ------------------------------------------------------------------------------------ format and key map

_MMTRACK_RULES = [
    (re.compile(r'^backbone\.(.*)$'), r'backbone.0.body.\1'),
    (re.compile(r'^neck\.convs\.0\.conv\.(weight|bias)$'), r'bottleneck.\1'),
    (re.compile(r'^head\.query_embedding\.weight$'), r'query_embed.weight'),
    (re.compile(r'^head\.cls_head\.layers\.(\d+)\.(.*)$'), r'cls_head.layers.\1.\2'),
    (re.compile(r'^head\.transformer\.decoder\.post_norm\.(.*)$'), r'transformer.decoder.norm.\1'),
    (re.compile(r'^head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.layers\.0\.0\.(.*)$'),
     r'transformer.\1.layers.\2.linear1.\3'),
    (re.compile(r'^head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.layers\.1\.(.*)$'),
     r'transformer.\1.layers.\2.linear2.\3'),
    (re.compile(r'^head\.transformer\.encoder\.layers\.(\d+)\.attentions\.0\.attn\.(.*)$'),
     r'transformer.encoder.layers.\1.self_attn.\2'),
    (re.compile(r'^head\.transformer\.decoder\.layers\.(\d+)\.attentions\.0\.attn\.(.*)$'),
     r'transformer.decoder.layers.\1.self_attn.\2'),
    (re.compile(r'^head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.attn\.(.*)$'),
     r'transformer.decoder.layers.\1.multihead_attn.\2'),
    (re.compile(r'^head\.bbox_head\.(tl|br)_corner_pred\.4\.(.*)$'), r'box_head.conv5_\1.\2'),
]
_MMTRACK_NORM = re.compile(r'^head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.norms\.(\d)\.(.*)$')
_MMTRACK_CORNER = re.compile(r'^head\.bbox_head\.(tl|br)_corner_pred\.([0-3])\.(conv|bn)\.(.*)$')


def mmtrack_to_official_key(key):
    """Official name of an MMTracking STARK key, or None for keys the official model does not have.

    Source: MMTRACK_FACTS.md section 4 (verified row by row against
    ``mmtrack_to_official_stark_st2_r50_keymap.tsv`` in the tests). Backbone ``num_batches_tracked`` entries map
    to None (the official backbone uses frozen batch norm). Unknown keys are returned unchanged, so that strict
    loading reports them as unexpected.
    """
    if key.startswith('backbone.') and key.endswith('.num_batches_tracked'):
        return None
    match = _MMTRACK_NORM.match(key)
    if match:
        part, layer, index, leaf = match.groups()
        return 'transformer.%s.layers.%s.norm%d.%s' % (part, layer, int(index) + 1, leaf)
    match = _MMTRACK_CORNER.match(key)
    if match:
        corner, index, kind, leaf = match.groups()
        return 'box_head.conv%d_%s.%d.%s' % (int(index) + 1, corner, 0 if kind == 'conv' else 1, leaf)
    for pattern, replacement in _MMTRACK_RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return key


def extract_state_dict(obj, source='checkpoint'):
    """Find the network weights in an unpickled checkpoint and name them the official way.

    Returns:
        ``(state_dict, fmt)``: an OrderedDict with official key names, ``fmt`` one of 'official', 'mmtracking',
        'state_dict'.
    Raises:
        CheckpointError: no recognisable weights.
    """
    if isinstance(obj, dict) and isinstance(obj.get('net'), dict):
        return _tensors_only(obj['net'], source), 'official'
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        weights = _tensors_only(obj['state_dict'], source)
        if any(k.startswith('head.transformer.') for k in weights):
            mapped = OrderedDict()
            for key, value in weights.items():
                new_key = mmtrack_to_official_key(key)
                if new_key is not None:
                    mapped[new_key] = value
            return mapped, 'mmtracking'
        return _strip_module_prefix(weights), 'state_dict'
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_module_prefix(_tensors_only(obj, source)), 'state_dict'
    top = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError('%s holds no STARK weights: expected a dict with "net" (official) or "state_dict" '
                          '(MMTracking), found %s' % (source, top))


def _tensors_only(weights, source):
    bad = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError('%s: entries that are not tensors: %s' % (source, _names(bad)))
    return OrderedDict(weights)


def _strip_module_prefix(weights):
    if weights and all(k.startswith('module.') for k in weights):
        return OrderedDict((k[len('module.'):], v) for k, v in weights.items())
    return weights


def infer_variant(state_dict, fmt='official'):
    """Variant name and score-head presence from official-named keys.

    Lightning has a RepVGG ``backbone.body.stage0``; lite0 an EfficientNet ``backbone.0.body._conv_stem``;
    ResNet-101 has ``layer3.22``. An official file without ``cls_head`` is STARK-S (official stage-1 ST files keep
    their untrained score head); an MMTracking file without it is a stage-1 STARK-ST: two templates, no score
    head, no template update (MMTRACK_FACTS.md section 6, D8). A lite0 file without ``cls_head`` is a lite0
    stage-1 model (two templates, no score head).

    Returns:
        ``(variant, has_score_head)``.
    """
    if any(k.startswith('backbone.body.stage0.') for k in state_dict):
        return 'lightning', False
    has_score = any(k.startswith('cls_head.') for k in state_dict)
    if any(k.startswith('backbone.0.body._conv_stem.') for k in state_dict):
        return 'lite0', has_score
    depth = 101 if any(k.startswith('backbone.0.body.layer3.22.') for k in state_dict) else 50
    if not has_score and fmt != 'mmtracking' and depth == 50:
        return 's50', False
    return 'st%d' % depth, has_score


# ------------------------------------------------------------------------------------------- loading


def check_keys(model, state_dict):
    """Compare a checkpoint's (official-named) weights with a model's and return the dict to load.

    ``num_batches_tracked`` of frozen batch norms is dropped (the official loader ignores it); a missing
    ``num_batches_tracked`` of a regular BN is filled with 0. Everything else must match exactly.

    Raises:
        CheckpointError: naming missing, unexpected and mis-shaped keys.
    """
    expected = model.state_dict()
    weights = OrderedDict()
    unexpected = []
    for key, value in state_dict.items():
        if key in expected:
            weights[key] = value
        elif not key.endswith('.num_batches_tracked'):
            unexpected.append(key)
    for key in expected:
        if key not in weights and key.endswith('.num_batches_tracked'):
            weights[key] = torch.zeros((), dtype=torch.int64)
    missing = [k for k in expected if k not in weights]
    wrong = ['%s %s (model %s)' % (k, tuple(v.shape), tuple(expected[k].shape))
             for k, v in weights.items() if tuple(v.shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append('%d missing: %s' % (len(missing), _names(missing)))
    if unexpected:
        problems.append('%d unexpected: %s' % (len(unexpected), _names(unexpected)))
    if wrong:
        problems.append('%d with the wrong shape: %s' % (len(wrong), _names(wrong)))
    if problems:
        raise CheckpointError('checkpoint does not match STARK-%s: %s'
                              % (model.variant.upper(), '; '.join(problems)))
    return weights


def _names(keys, limit=8):
    shown = ', '.join(keys[:limit])
    return shown + (', ... (%d more)' % (len(keys) - limit) if len(keys) > limit else '')


def load_network(checkpoint=None, variant='auto', device='cpu', search_size=320, seed=0, template_size=128,
                 fuse=True):
    """Build a STARK network, fill it with a checkpoint's weights, and put it in eval mode on ``device``.

    Args:
        checkpoint: path to an official, MMTracking or ``stark_ros.train`` checkpoint; None or '' for the shipped
            STARK-lite0 model (:data:`stark_ros.model.default_model.DEFAULT_CHECKPOINT`); ``'synthetic'`` for
            deterministic synthetic weights (:func:`stark_ros.model.synthetic.synthetic_state_dict`, seed
            ``seed``; tests only: the boxes are meaningless).
        variant: 'auto' (inferred from the keys; st50 for synthetic weights), 's50', 'st50', 'st101', 'lightning'
            or 'lite0'.
        device: see :func:`stark_ros.backends.device.resolve_device`.
        search_size, template_size: patch sides in pixels (the heads are built for ``size / 16`` cells).
        fuse: fold Lightning's RepVGG branches into single convolutions after loading (faster; boxes within
            3.2e-4 px of the un-fused official tracker). Checkpoints in the fused (deployed) form load either way.
    Returns:
        ``(network, info)``; ``info`` is a dict with 'variant', 'format' ('official' | 'mmtracking' | 'state_dict'
        | 'synthetic'), 'has_score_head', 'device', 'checkpoint' (the file loaded, or 'synthetic').
    Raises:
        CheckpointError: unreadable or (shipped model) missing file, or keys/shapes that do not fit the variant
            (the message names them).
        ValueError: unknown variant or device.
    """
    from ..backends.device import resolve_device   # not at the top: stark_ros.backends imports stark_ros.model
    torch_device = resolve_device(device)
    if variant != 'auto' and variant not in VARIANT_NAMES:
        raise ValueError('unknown STARK variant %r (known: auto, %s)' % (variant, ', '.join(VARIANT_NAMES)))
    checkpoint = resolve_checkpoint(checkpoint)
    if checkpoint is None:
        from .synthetic import synthetic_state_dict
        name = 'st50' if variant == 'auto' else variant
        network = build_network(name, search_size=search_size, template_size=template_size)
        state_dict, fmt = synthetic_state_dict(network.state_dict(), seed), 'synthetic'
    else:
        state_dict, fmt = extract_state_dict(read_checkpoint_file(checkpoint), str(checkpoint))
        inferred, has_score = infer_variant(state_dict, fmt)
        name = inferred if variant == 'auto' else variant
        # Only MMTracking stage-1 files and lite0 stage-1 files legitimately lack the score head of an ST model.
        score_head = None
        if (fmt == 'mmtracking' and name not in ('s50', 'lightning')) or (name == inferred == 'lite0'):
            score_head = has_score
        # lite0 files trained before the corner-peak score head (2026-12-06) carry the MLP head
        score_kind = 'mlp' if name == 'lite0' and any(k.startswith('cls_head.layers.') for k in state_dict) else None
        network = build_network(name, score_head, search_size, template_size, score_kind=score_kind)
        if name == 'lightning' and any('.rbr_reparam.' in k for k in state_dict):
            fuse_repvgg(network)
    network.load_state_dict(check_keys(network, state_dict))
    if fuse and name == 'lightning':
        fuse_repvgg(network)
    network.eval().requires_grad_(False).to(torch_device)
    return network, {'variant': network.variant, 'format': fmt, 'has_score_head': network.has_score_head,
                     'device': str(torch_device), 'checkpoint': SYNTHETIC if checkpoint is None else checkpoint}
