"""Training checkpoints: the official trainer's file layout without pickled objects, atomic writes, retention,
random states.

File: ``<dir>/<NetType>_ep%04d.pth.tar`` (official naming, STARK_FACTS.md sections 12b and 13), a ``torch.save``
of a dict holding only tensors and plain Python values, so ``torch.load(weights_only=True)`` reads it and
:func:`stark_ros.model.load_network` loads it as it is:

* ``net``: the network's state_dict (official key names), ``net_type``, ``variant``, ``epoch`` (1-based, the
  number of finished epochs), ``stage``;
* ``optimizer``, ``lr_scheduler``, ``grad_scaler`` (AMP only): their ``state_dict()``;
* ``rng_states``: one dict per process (rank order) with the torch CPU (and CUDA) generator states, numpy's and
  Python's;
* ``config``: the training config (plain dict) and ``config_yaml`` (its text); ``stats``: last epoch's mean
  losses.

Unlike the official trainer, every epoch is written (then old files are pruned: the last N and every K-th stay),
and a file is written to a temporary name and renamed, so a crash never leaves a truncated checkpoint.
"""
import os
import random
import re

import numpy as np
import torch

from ..errors import CheckpointError

_NAME = re.compile(r'^(?P<net_type>\w+)_ep(?P<epoch>\d{4,})\.pth\.tar$')

#: ``net_type`` written for each variant (the official class names; ``STARKST`` also for stage 1).
NET_TYPES = {'s50': 'STARKS', 'st50': 'STARKST', 'st101': 'STARKST', 'lightning': 'STARKLightningXtrt'}


def net_type_of(network):
    """Official class name for ``network.variant`` (:data:`NET_TYPES`), else ``STARK<VARIANT>``."""
    variant = getattr(network, 'variant', type(network).__name__)
    return NET_TYPES.get(variant, 'STARK' + variant.upper().replace('_', ''))


def checkpoint_path(directory, net_type, epoch):
    """``<directory>/<net_type>_ep%04d.pth.tar``."""
    return os.path.join(directory, '%s_ep%04d.pth.tar' % (net_type, epoch))


def list_checkpoints(directory):
    """``[(epoch, path), ...]`` of the checkpoint files in ``directory``, by epoch (empty if it does not exist)."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group('epoch')), os.path.join(directory, name)))
    return sorted(found)


def save_atomic(state, path):
    """``torch.save(state, path)`` through a temporary file in the same directory and ``os.replace``.

    Raises:
        ValueError: ``state`` holds something other than tensors and plain values (it would need pickled classes).
    """
    _check_plain(state, 'checkpoint')
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, '.%s.tmp%d' % (os.path.basename(path), os.getpid()))
    try:
        with open(temporary, 'wb') as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(value, where):
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise ValueError('%s: key %r is not a str or int' % (where, key))
            _check_plain(item, '%s.%s' % (where, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, '%s[%d]' % (where, index))
    elif not isinstance(value, _PLAIN):
        raise ValueError('%s is a %s, which a weights_only checkpoint cannot hold' % (where, type(value).__name__))


def prune_checkpoints(directory, keep_last, keep_every):
    """Delete checkpoints except the ``keep_last`` newest and those whose epoch is a multiple of ``keep_every``.

    ``keep_last`` 0 keeps none by recency; ``keep_every`` 0 keeps none by period. Returns the deleted paths.
    """
    found = list_checkpoints(directory)
    newest = {epoch for epoch, _ in found[-keep_last:]} if keep_last else set()
    deleted = []
    for epoch, path in found:
        if epoch in newest or (keep_every and epoch % keep_every == 0):
            continue
        os.remove(path)
        deleted.append(path)
    return deleted


def read_training_checkpoint(path):
    """Read a checkpoint this trainer wrote (``weights_only=True``; nothing in it can run code).

    Returns:
        the dict (tensors on CPU).
    Raises:
        CheckpointError: missing or unreadable file, or one without ``net`` / ``epoch``.
    """
    if not os.path.isfile(path):
        raise CheckpointError('checkpoint file not found: %s' % path)
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a corrupt or unsafe file
        raise CheckpointError('cannot read training checkpoint %s: %s' % (path, error)) from error
    if not isinstance(state, dict) or not isinstance(state.get('net'), dict) or 'epoch' not in state:
        raise CheckpointError('%s is not a training checkpoint (needs "net" and "epoch")' % path)
    return state


# ------------------------------------------------------------------------------------------- random states


def capture_rng_state():
    """This process's random generator states as tensors and plain values (a ``rng_states`` entry)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {'torch': torch.get_rng_state(),
             'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                       'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
             'python': {'version': version, 'internal': list(internal), 'gauss': gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state):
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'])
    numpy_state = state['numpy']
    np.random.set_state((numpy_state['kind'], numpy_state['keys'].numpy().astype(np.uint32), numpy_state['pos'],
                         numpy_state['has_gauss'], numpy_state['cached_gaussian']))
    python_state = state['python']
    random.setstate((python_state['version'], tuple(python_state['internal']), python_state['gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])
