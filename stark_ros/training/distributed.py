"""Process-group set-up for training with torchrun (one process per GPU with NCCL, or CPU processes with gloo).

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``; without them the run is a
single process. Collectives get a timeout, so a rank whose peer died fails instead of waiting forever (torchrun
itself also stops the other workers as soon as one exits with an error).
"""
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..backends.device import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the run.

    Attributes:
        rank: global rank 0..world_size-1; rank 0 writes checkpoints, logs and the progress bar.
        local_rank: rank on this machine (the GPU index for CUDA runs).
        world_size: number of processes.
        device: this process's torch device.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device('cpu')

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


def init_distributed(device='auto', backend=None, timeout_s=600):
    """Join the process group torchrun describes in the environment (or run alone without it).

    Args:
        device: 'auto', 'cpu', 'cuda' (each process takes ``cuda:LOCAL_RANK``) or 'cuda:N' (single process).
        backend: 'nccl', 'gloo' or None (nccl for CUDA, gloo for CPU).
        timeout_s: collective timeout in seconds.
    Returns:
        :class:`DistContext`.
    Raises:
        ValueError: unknown device, CUDA asked for but missing, or more processes on a machine than GPUs.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    torch_device = resolve_device(device)
    if torch_device.type == 'cuda' and world_size > 1:
        if local_rank >= torch.cuda.device_count():
            raise ValueError('local rank %d has no GPU (%d visible): start at most one process per GPU'
                             % (local_rank, torch.cuda.device_count()))
        torch_device = torch.device('cuda', local_rank)
    if torch_device.type == 'cuda':
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        backend = backend or ('nccl' if torch_device.type == 'cuda' else 'gloo')
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s),
                                device_id=torch_device if backend == 'nccl' else None)
    return DistContext(rank, local_rank, world_size, torch_device)


def shutdown_distributed():
    """Leave the process group (after a successful run; a failing rank just exits)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values, context):
    """Mean over processes of a 1-D float tensor (returned as a new tensor; unchanged when alone)."""
    if not context.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / context.world_size


def all_reduce_max(values, context):
    """Element-wise maximum over processes of a tensor (unchanged when alone)."""
    if not context.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def gather_objects(obj, context):
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (picklable plain objects only)."""
    if not context.distributed:
        return [obj]
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(context):
    """Wait for every process (no-op alone)."""
    if context.distributed:
        dist.barrier()
