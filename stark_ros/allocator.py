"""Process-wide tuning of the C allocator for a long-running tracker process (glibc only).

Why: glibc's ``malloc`` serves blocks above a *dynamic* threshold with fresh ``mmap`` pages and returns freed
heap tops to the kernel (``trim``/``madvise``). A tracker process keeps allocating and freeing blocks of about
1 MB (camera images, crops, activations), which moves the threshold around and makes later tensor allocations
fault in new pages. Measured on the 2-core CI VM: ``track()`` of ST50 ran 5-10% slower in a process that had
passed ~1 MB images around (the node, or the benchmark after a node run) than in a fresh one, and the node's
p95 latency fell from 317 to 284 ms with the settings below (``bench/bench_node.py``).

The settings: a fixed mmap threshold of 32 MiB (the largest glibc allows on 64-bit; it also stops the dynamic
adjustment) and a trim threshold of 1 GiB. Cost: memory freed by the process is kept for re-use instead of
being returned to the system, so the resident size stays near its peak (about 0.6 GB for the ST50 node).
"""
import ctypes
import ctypes.util

#: ``mallopt`` parameters (glibc ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024


def tune_allocator():
    """Apply the settings above to this process; returns True when glibc accepted both, False elsewhere.

    Call it once at the start of an executable (``tracker_node``, the demo, the offline tool). Harmless to
    repeat; a no-op (False) on a C library without ``mallopt``.
    """
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, 'mallopt', None)
    except OSError:
        return False
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                   TRIM_THRESHOLD_BYTES))
