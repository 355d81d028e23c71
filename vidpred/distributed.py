"""Data-parallel training under torchrun: process group set-up and the few collectives the
trainer needs.

``torchrun --nproc_per_node=N -m vidpred train ...`` starts N copies of the CLI with RANK,
WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT in their environment; ``process_group()`` joins
them (NCCL on GPUs, gloo on CPUs). A plain ``python -m vidpred`` sees no WORLD_SIZE and runs
as one process; nothing here is then used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

_RELEASE_WAIT_S = 10.0  # the longest a collective waits for gloo to let go of its tensor


@dataclass(frozen=True)
class World:
    """Where this process sits among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the one process that writes checkpoints, logs and progress."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Returns True when the environment says this is one of several torchrun workers."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_world() -> World:
    """Returns the World torchrun's environment describes (rank 0 of 1 without torchrun)."""
    return World(
        rank=int(os.environ.get("RANK", "0")),
        size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def current_world() -> World:
    """Returns the World of the initialised default process group, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def rank_device(device: torch.device, world: World) -> torch.device:
    """Returns this rank's device: its own GPU (LOCAL_RANK) on CUDA, else ``device``."""
    if device.type == "cuda" and world.size > 1:
        return torch.device("cuda", world.local_rank)
    return device


@contextlib.contextmanager
def process_group(device_type: str) -> Iterator[World]:
    """Joins the torchrun process group for the duration of the block; yields this World.

    Without torchrun (WORLD_SIZE unset or 1) it does nothing and yields a single-process
    World, so callers need no special case.
    """
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        yield current_world()
        return
    world = env_world()
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend=backend)
    log.debug("rank %d of %d joined the %s process group", world.rank, world.size, backend)
    try:
        yield world
        # Leave together: rank 0 still writes the checkpoint when the others are done. (An
        # abort at exit this barrier was once meant to cure came from the gloo threads'
        # hold on the last exchange: see _all_reduce.) After an error, torchrun stops the
        # other ranks.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def all_mean(values: list[float], device: torch.device) -> list[float]:
    """Returns the mean over ranks of each value (the same list on every rank)."""
    t = _all_reduce(values, torch.float64, device, dist.ReduceOp.SUM)
    return (t / dist.get_world_size()).tolist()


def all_min(values: list[int], device: torch.device) -> list[int]:
    """Returns the minimum over ranks of each value (the same list on every rank)."""
    return _all_reduce(values, torch.int64, device, dist.ReduceOp.MIN).tolist()


def _all_reduce(
    values: list, dtype: torch.dtype, device: torch.device, op: dist.ReduceOp
) -> torch.Tensor:
    """Returns the tensor of ``values`` reduced over ranks with ``op``, once the process
    group's own threads have let go of it.

    A gloo worker thread drops its reference to a collective's tensor a moment after the
    caller's wait() returned, and that drop takes the GIL (the tensor has a Python object).
    Where it still held the last step's exchange as the process exited, the thread asked for
    the GIL during interpreter shutdown and aborted the process: rank 1, "terminate called
    without an active exception", in about one 2-process run in 20 and in 3 CI runs (gdb on
    the core: ProcessGroupGloo::runLoop -> ~AsyncBarrierWork ->
    ~AsyncAllreduceWork -> TensorImpl::decref_pyobject -> take_gil -> pthread_exit ->
    std::terminate, the main thread in Py_FinalizeEx). So the caller waits, GIL released,
    until the Python reference count is back to its own (a sleep of a millisecond or two;
    bounded, should a release ever take longer).
    """
    t = torch.tensor(values, dtype=dtype, device=device)
    own = sys.getrefcount(t)
    dist.all_reduce(t, op=op)
    if dist.get_backend() == "gloo":
        deadline = time.monotonic() + _RELEASE_WAIT_S
        while sys.getrefcount(t) > own and time.monotonic() < deadline:
            time.sleep(0.0005)
    return t


def barrier() -> None:
    dist.barrier()
