"""The one core-count policy (stark_ros.cpu): affinity mask capped by the cgroup CPU quota, on real files."""
import os
import subprocess
import sys

import pytest

from stark_ros import cpu


def _cgroup_tree(tmp_path, proc_lines, files):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / 'proc_cgroup'
    proc.write_text(''.join(line + '\n' for line in proc_lines))
    root = tmp_path / 'sys_fs_cgroup'
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + '\n')
    root.mkdir(exist_ok=True)
    return str(proc), str(root)


@pytest.mark.parametrize('proc_lines, files, limit', [
    (['0::/'], {'cpu.max': 'max 100000'}, None),                                   # v2, no quota
    (['0::/'], {'cpu.max': '150000 100000'}, 1.5),                                 # docker --cpus 1.5
    (['0::/kubepods/pod1/ctr'], {'kubepods/cpu.max': '400000 100000',              # ancestors limit too
                                 'kubepods/pod1/ctr/cpu.max': '50000 100000'}, 0.5),
    (['4:memory:/x', '1:cpu,cpuacct:/docker/abc'],                                 # cgroup v1
     {'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '200000', 'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000'}, 2.0),
    (['1:cpu:/'], {'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000'}, None),   # v1, no quota
    (['0::/'], {'cpu.max': 'garbage'}, None),
])
def test_cgroup_cpu_limit_reads_v1_and_v2(tmp_path, proc_lines, files, limit):
    proc, root = _cgroup_tree(tmp_path, proc_lines, files)
    assert cpu.cgroup_cpu_limit(proc, root) == limit


def test_available_cores_is_the_affinity_capped_by_the_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    proc, root = _cgroup_tree(tmp_path, ['0::/'], {'cpu.max': '50000 100000'})
    assert cpu.available_cores(proc, root) == 1                        # half a core: one thread
    proc, root = _cgroup_tree(tmp_path / 'b', ['0::/'], {'cpu.max': '%d 100000' % (100000 * 64)})
    assert cpu.available_cores(proc, root) == affinity                 # the affinity mask still caps
    proc, root = _cgroup_tree(tmp_path / 'c', ['0::/'], {'cpu.max': 'max 100000'})
    assert cpu.available_cores(proc, root) == affinity


def test_every_thread_default_follows_the_affinity_mask():
    """In a process pinned to one core, the backends' default and the node's auto num_threads both see one core
    (os.cpu_count() sees every core of the machine)."""
    code = ('import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); '
            'from stark_ros.backends import default_threads; from stark_ros.cpu import inference_threads; '
            'print(default_threads(), inference_threads(0), os.cpu_count())')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    backends, node, _machine = (int(v) for v in out.stdout.split())
    assert (backends, node) == (1, 1), out.stdout


def test_inference_threads_leave_a_core_free():
    assert cpu.inference_threads(0, cores=2) == 1
    assert cpu.inference_threads(0, cores=1) == 1
    assert cpu.inference_threads(0, cores=8) == 7
    assert cpu.inference_threads(3, cores=8) == 3
