"""How many CPU cores this process may use: the one core-count policy of stark_ros.

Containers and robots restrict CPUs two ways, and ``os.cpu_count()`` sees neither: the CPU affinity mask
(``taskset``, ``docker --cpuset-cpus``, Kubernetes static CPU manager) and the cgroup CPU quota
(``docker --cpus``, Kubernetes CPU limits: ``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
in cgroup v1). :func:`available_cores` is the smaller of the two; every thread count in the project derives from it
(the node's ``num_threads``, the backends' default, the benchmarks).
"""
import math
import os

_CGROUP_ROOT = '/sys/fs/cgroup'


def _read(path):
    try:
        with open(path, encoding='ascii') as f:
            return f.read().strip()
    except (OSError, ValueError):
        return None


def _ancestors(root, path):
    """``root/path`` and each parent folder up to ``root`` (a parent's limit applies to its children)."""
    parts = [p for p in path.strip('/').split('/') if p and p != '..']
    return [os.path.join(root, *parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_limit(folder):
    """CPUs allowed by ``folder/cpu.max`` (``"<quota> <period>"`` in microseconds, quota ``max`` = none)."""
    text = _read(os.path.join(folder, 'cpu.max'))
    if not text:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == 'max':
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(folder):
    """CPUs allowed by ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = none)."""
    quota, period = _read(os.path.join(folder, 'cpu.cfs_quota_us')), _read(os.path.join(folder, 'cpu.cfs_period_us'))
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(proc_cgroup='/proc/self/cgroup', root=_CGROUP_ROOT):
    """The CPU quota of this process's cgroups in cores (e.g. 1.5), or None when there is none or it is unknown.

    Reads ``proc_cgroup`` (lines ``hierarchy-id:controllers:path``) and, for the cgroup v2 entry (``0::path``) and
    the v1 ``cpu`` controller, the quota files of the cgroup and of its ancestors below ``root`` (also the root
    itself, which is what a container sees of its own cgroup); the smallest limit wins.
    """
    text = _read(proc_cgroup)
    if not text:
        return None
    limits = []
    for line in text.splitlines():
        fields = line.split(':', 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == '0' and controllers == '':
            limits += [_v2_limit(folder) for folder in _ancestors(root, path)]
        elif 'cpu' in controllers.split(','):
            for mount in ('cpu', 'cpu,cpuacct', 'cpuacct,cpu'):
                base = os.path.join(root, mount)
                if os.path.isdir(base):
                    limits += [_v1_limit(folder) for folder in _ancestors(base, path)]
    limits = [v for v in limits if v is not None]
    return min(limits) if limits else None


def affinity_cores():
    """Cores in this process's CPU affinity mask (``os.cpu_count()`` where the OS has no affinity call)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)


def available_cores(proc_cgroup='/proc/self/cgroup', root=_CGROUP_ROOT):
    """Cores this process may use: the affinity mask, capped by the cgroup quota rounded up (at least 1).

    A quota of 1.5 cores gives 2 (two threads can use 1.5 cores; one could not); the affinity mask always caps.
    """
    cores = affinity_cores()
    limit = cgroup_cpu_limit(proc_cgroup, root)
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit - 1e-9)))
    return cores


def inference_threads(requested, cores=None):
    """Inference threads for the node's ``num_threads`` = ``requested``: itself when > 0, else the available cores
    minus one (at least 1), leaving a core to the executor, DDS and the camera driver.

    Measured on a 2-core machine: with 2 OpenMP threads beside the executor and DDS threads, ST50 ``track()`` took
    1.8-7 s instead of 0.15 s (each parallel region waits for a descheduled thread); with 1 thread, 0.3 s.
    """
    if requested > 0:
        return int(requested)
    return max(1, (cores or available_cores()) - 1)
