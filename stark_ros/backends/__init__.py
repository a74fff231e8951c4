"""Inference backends for the STARK networks: one engine interface, several runtimes.

``build_engine(network, backend, device, precision)`` wraps a loaded network (:func:`stark_ros.model.load_network`)
in an *engine* that :class:`stark_ros.tracker.StarkTracker` drives like the network itself
(:class:`stark_ros.tracker.engine.InferenceEngine`). Backends (name: what; precisions; extra packages):

* ``torch``: the eager network, the reference; fp32.
* ``torch-fast``: folded batch norms, channels-last, inference mode, bf16/fp16 convolutions and autocast
  transformer; fp32, bf16 (CPU), fp16 (CUDA); optional ``compile=True``.
* ``openvino``: OpenVINO CPU runtime, three compiled models (search backbone and head with a dynamic batch axis:
  several targets in one call); fp32, bf16; ``openvino``, ``onnx``.
* ``onnxruntime``: the exported ONNX graphs (:mod:`.export_onnx`, same batch axis) on ONNX Runtime CPU; fp32;
  ``onnx``, ``onnxruntime``.

``backend='auto'`` (the default of the node, the demo, ``stark_ros.track`` and ``stark_ros.evaluate``) is resolved
by :func:`resolve_backend` to the fastest exact (fp32) engine installed for the device: ``openvino`` on an x86 CPU
when the ``openvino`` package is installed, else ``torch``; ``torch`` on CUDA (reduced precisions: ``torch-fast``).

Every backend's module docstring states its numerical contract: fp32 paths reproduce the oracles with the core
tolerances (boxes 1e-2 px, scores 1e-4); reduced-precision paths are bounded against the fp32 run
(``test/test_backends.py``). ``precision=None`` is always fp32; 'auto' picks bf16 on a CPU with native bf16
(avx512_bf16 / AMX), fp16 on CUDA (torch-fast), fp32 otherwise.
"""
import importlib.util
import platform

from .common import Engine, cpu_supports_bf16, default_threads, resolve_precision
from .device import CPU_ONLY_BACKENDS, resolve_device

#: Backend names accepted by :func:`build_engine`, in order of preference for the reference.
BACKENDS = ('torch', 'torch-fast', 'openvino', 'onnxruntime')

_REQUIRES = {'torch': (), 'torch-fast': (), 'openvino': ('openvino', 'onnx'), 'onnxruntime': ('onnx', 'onnxruntime')}


def backend_available(backend):
    """True if the Python packages ``backend`` needs are installed (does not import them)."""
    if backend not in _REQUIRES:
        raise ValueError('unknown backend %r (known: %s)' % (backend, ', '.join(BACKENDS)))
    return all(importlib.util.find_spec(name) is not None for name in _REQUIRES[backend])


def available_backends():
    """The backends whose packages are installed here."""
    return tuple(b for b in BACKENDS if backend_available(b))


#: the backend name that :func:`resolve_backend` resolves
AUTO = 'auto'
#: what ``platform.machine()`` says on x86 CPUs (OpenVINO's CPU plugin is built and tuned for them)
_X86_MACHINES = ('x86_64', 'amd64', 'i386', 'i686', 'x86')


def resolve_backend(backend, device='cpu', precision=None, cuda_available=None, machine=None):
    """The engine ``backend`` names: itself, or for ``'auto'`` the fastest exact engine installed for ``device``.

    ``'auto'`` resolves to (bench/README.md and the README's lite0 table: openvino fp32 runs the shipped lite0
    model at 41 FPS against 17 for eager torch, ST50 in 0.53x of eager torch's time; both reproduce the fp32
    oracles):

    * a CUDA device (``'cuda'``, ``'cuda:N'``, or ``'auto'`` where CUDA is available): ``torch`` for fp32;
      ``torch-fast`` when ``precision`` asks for fp16, bf16 or auto. Never a CPU-only backend.
    * the CPU of an x86 machine with the ``openvino`` package installed (:func:`backend_available`):
      ``openvino`` (fp32; also bf16 and auto precision, which it runs natively where the CPU has bf16; fp16, which
      no CPU engine runs, goes to ``torch-fast``, whose error says so).
    * any other CPU: ``torch`` for fp32; ``torch-fast`` when ``precision`` asks for bf16, fp16 or auto.

    Reduced precision is used only when ``precision`` asks for it; None and 'fp32' are fp32. Every engine
    'auto' can pick takes the start-up template and search sizes; openvino compiles its graphs for the
    start-up template size, so changing ``template_size`` later needs ``torch`` or ``torch-fast``.

    Args:
        backend: 'auto' or one of :data:`BACKENDS` (case and surrounding spaces ignored).
        device: the device string as :func:`resolve_device` takes it (or a :class:`torch.device`); only whether
            it means CUDA matters here, :func:`resolve_device` checks it.
        precision: None, 'fp32', 'bf16', 'fp16' or 'auto'.
        cuda_available: whether CUDA can be used (for device 'auto'); default ``torch.cuda.is_available()``.
        machine: the CPU architecture name; default ``platform.machine()``.
    Returns:
        a name in :data:`BACKENDS`.
    Raises:
        ValueError: an unknown backend name.
    """
    name = str(backend).strip().lower()
    if name != AUTO:
        if name not in BACKENDS:
            raise ValueError('unknown backend %r (known: auto, %s)' % (backend, ', '.join(BACKENDS)))
        return name
    precision = None if precision is None else str(precision).strip().lower()
    reduced = precision in ('bf16', 'fp16', 'auto')
    text = str(device).strip().lower()
    if text == 'auto':
        if cuda_available is None:
            import torch
            cuda_available = torch.cuda.is_available()
        on_cuda = bool(cuda_available)
    else:
        on_cuda = text.startswith('cuda')
    if on_cuda:
        return 'torch-fast' if reduced else 'torch'
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine in _X86_MACHINES and precision != 'fp16' and backend_available('openvino'):
        return 'openvino'
    return 'torch-fast' if reduced else 'torch'


def build_engine(network, backend='torch', device=None, precision=None, template_size=128, **options):
    """Wrap a loaded network in an inference engine.

    Args:
        network: a network from :func:`stark_ros.model.load_network` (eval mode). Not modified by any backend
            but 'torch' (which moves it to ``device``).
        backend: one of :data:`BACKENDS` ('auto' is resolved by :func:`load_engine`, which knows the device).
        device: torch device ('cpu', 'cuda', ...); default the network's. 'openvino' and 'onnxruntime' run on
            the CPU only.
        precision: None or 'fp32' (default), 'bf16', 'fp16' (torch-fast on CUDA) or 'auto'.
        template_size: template patch side in pixels (the search side comes from the network).
        **options: backend specific: torch-fast ``channels_last``, ``compile``; openvino ``threads``,
            ``cache_dir``; onnxruntime ``threads``, ``model_dir`` (use exported files instead of exporting).
    Returns:
        an :class:`Engine`.
    Raises:
        ValueError: unknown backend or precision, a precision the backend/device cannot run, or a backend whose
            packages are not installed (the message names the pip package).
    """
    if backend not in BACKENDS:
        raise ValueError('unknown backend %r (known: %s)' % (backend, ', '.join(BACKENDS)))
    if not backend_available(backend):
        raise ValueError('backend %r needs the Python package(s) %s: pip install %s'
                         % (backend, ', '.join(_REQUIRES[backend]), ' '.join(_REQUIRES[backend])))
    if backend == 'torch':
        from .torch_backends import TorchEngine
        return TorchEngine(network, device, precision, template_size, **options)
    if backend == 'torch-fast':
        from .torch_backends import TorchFastEngine
        return TorchFastEngine(network, device, precision, template_size, **options)
    if backend == 'openvino':
        from .openvino_backend import OpenVINOEngine
        return OpenVINOEngine(network, device, precision, template_size, **options)
    from .onnxruntime_backend import OnnxRuntimeEngine
    return OnnxRuntimeEngine(network, device, precision, template_size, **options)


def load_engine(checkpoint=None, variant='auto', device='cpu', backend='torch', precision=None, params=None,
                seed=0, fuse=True, **options):
    """Load a checkpoint (:func:`stark_ros.model.load_network`) and build an engine for it.

    Intended for ``StarkTracker.from_checkpoint(..., backend=..., precision=...)``. ``backend='auto'`` is resolved
    by :func:`resolve_backend`.

    Returns:
        ``(engine, info)``: ``info`` is load_network's dict plus 'backend' (the resolved name), 'requested_backend'
        (as given, e.g. 'auto') and 'precision'.
    Raises:
        CheckpointError, ValueError: as :func:`stark_ros.model.load_network` and :func:`build_engine`.
    """
    from ..model import load_network
    from ..tracker.params import TrackerParams
    params = params if params is not None else TrackerParams()
    requested = backend
    backend = resolve_backend(backend, device, precision)      # fails before the (slow) network build
    device = resolve_device(device, backend)    # 'auto' never means CUDA for a CPU-only backend
    network, info = load_network(checkpoint, variant, device, params.search_size, seed, params.template_size,
                                 fuse=fuse)
    engine = build_engine(network, backend, device=info['device'], precision=precision,
                          template_size=params.template_size, **options)
    info = dict(info, backend=engine.backend, requested_backend=str(requested).strip().lower(),
                precision=engine.precision)
    return engine, info


__all__ = ['AUTO', 'BACKENDS', 'CPU_ONLY_BACKENDS', 'Engine', 'available_backends', 'backend_available',
           'build_engine', 'cpu_supports_bf16', 'default_threads', 'load_engine', 'resolve_backend', 'resolve_device',
           'resolve_precision']
