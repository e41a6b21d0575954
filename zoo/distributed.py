"""Data-parallel training through torch.distributed, as launched by torchrun.

One process per device; every process holds the whole model, takes its shard of each
global batch, and DistributedDataParallel averages the gradients. Rank 0 alone writes
the run folder. gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from zoo.devices import resolve_device
from zoo.errors import InvalidInputError


@dataclass
class World:
    """This process's place among the training processes (size 1: no distribution)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch (strided, so shards differ by at most one)."""
        return index[self.rank :: self.size] if self.distributed else index

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
        return tensor

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (small Python objects: paths, flags)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values of `tensors`, copied in place on every rank: one broadcast per dtype."""
        if not self.distributed:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            flat = torch.cat([t.detach().flatten() for t in group])
            dist.broadcast(flat, src=0)
            for t, values in zip(group, flat.split([t.numel() for t in group]), strict=True):
                t.data.copy_(values.view_as(t))

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(device: str = "auto") -> tuple[World, torch.device]:
    """The World from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), with the
    process group started, and this process's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    world = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    chosen = resolve_device(device)
    if not world.distributed:
        return world, chosen
    if chosen.type == "cuda":
        gpus = torch.cuda.device_count()
        if world.local_rank >= gpus:
            per_machine = os.environ.get("LOCAL_WORLD_SIZE", world.local_rank + 1)
            raise InvalidInputError(
                f"{per_machine} data-parallel processes on this machine need a GPU each, and it has "
                f"{gpus}: start at most {gpus} per machine (--nproc {gpus})"
            )
        chosen = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(chosen)
    elif chosen.type != "cpu":
        raise InvalidInputError(f"data-parallel training runs on cpu or cuda, not {chosen.type}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return world, chosen


def lost_contact(err: BaseException) -> bool:
    """Whether `err` is a collective that failed because another process ended (gloo reports
    the peer's closed connection as a plain RuntimeError)."""
    if isinstance(err, (dist.DistBackendError, dist.DistNetworkError)):
        return True
    return isinstance(err, RuntimeError) and any(s in str(err) for s in ("closed by peer", "reset by peer"))


def shutdown(world: World) -> None:
    """Leave the process group cleanly. gloo can abort at interpreter exit if its worker
    threads still see live tensors; a barrier, a collection and an explicit destroy avoid
    that race."""
    if not world.distributed or not dist.is_initialized():
        return
    dist.barrier()
    gc.collect()
    dist.destroy_process_group()
