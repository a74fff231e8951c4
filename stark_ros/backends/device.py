"""Device selection for the engines: which torch device a backend runs on.

``device='auto'`` means CUDA when it is available *and* the backend can use it; the exported-graph backends
(``openvino``, ``onnxruntime``) run on the CPU only, so for them 'auto' is always the CPU.
"""
import re

import torch

#: Backends that run on the CPU only, whatever the machine has.
CPU_ONLY_BACKENDS = ('openvino', 'onnxruntime')


def resolve_device(device, backend=None, cuda_available=None):
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` -> :class:`torch.device` for ``backend``.

    Args:
        device: the device string (case and surrounding spaces ignored) or a :class:`torch.device`.
        backend: the engine's backend name, or None for the plain network (``torch``). For a backend in
            :data:`CPU_ONLY_BACKENDS`, 'auto' is the CPU.
        cuda_available: whether CUDA can be used; default ``torch.cuda.is_available()``.
    Raises:
        ValueError: unknown device string, CUDA asked for but not available (or the index does not exist), or CUDA
            asked for a CPU-only backend.
    """
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    text = str(device).strip().lower()
    if text == 'auto':
        return torch.device('cuda' if cuda_available and backend not in CPU_ONLY_BACKENDS else 'cpu')
    if text == 'cpu':
        return torch.device('cpu')
    match = re.fullmatch(r'cuda(?::(\d+))?', text)
    if not match:
        raise ValueError("unknown device %r: use 'cpu', 'cuda', 'cuda:N' or 'auto'" % (device,))
    if backend in CPU_ONLY_BACKENDS:
        raise ValueError("the %s backend runs on the CPU only; use device 'cpu' or 'auto' (got %r)"
                         % (backend, device))
    if not cuda_available:
        raise ValueError('device %r asked for, but CUDA is not available on this machine' % (device,))
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ValueError('device %r asked for, but only %d CUDA device(s) exist'
                         % (device, torch.cuda.device_count()))
    return torch.device('cuda', index)
