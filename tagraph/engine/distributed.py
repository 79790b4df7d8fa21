r"""Multi-process training helpers (``torchrun --nproc_per_node=N -m tagraph train ...``).

:func:`init_distributed` reads the ``torchrun`` environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and starts
the process group: NCCL on GPU, Gloo on CPU. Without that environment
everything here is a no-op, so the same code runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "DistInfo",
    "init_distributed",
    "dist_info",
    "is_main_process",
    "barrier",
    "all_reduce_mean",
    "TrainingStep",
]


@dataclass(frozen=True)
class DistInfo:
    r"""Rank, world size and local rank of this process (``0, 1, 0`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    r"""The current process group's :class:`DistInfo`."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return DistInfo()


def init_distributed(device: str | torch.device = "cpu") -> DistInfo:
    r"""Starts the default process group when launched by ``torchrun``
    (``WORLD_SIZE > 1``): backend NCCL for CUDA devices, Gloo otherwise.
    Returns :class:`DistInfo`; does nothing (world size 1) without ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist_info()


def is_main_process() -> bool:
    r"""Whether this is rank 0 (always true without a process group)."""
    return dist_info().rank == 0


def barrier() -> None:
    r"""Waits for every rank (no-op without a process group)."""
    if dist_info().enabled:
        dist.barrier()


def all_reduce_mean(values: dict[str, float], device: str | torch.device = "cpu"
                    ) -> dict[str, float]:
    r"""Averages a dict of floats over ranks (same keys on every rank)."""
    info = dist_info()
    if not info.enabled or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


class TrainingStep(nn.Module):
    r"""Wraps a model so that ``forward(batch)`` is ``model.training_step(batch)``;
    the wrapper is what :class:`~torch.nn.parallel.DistributedDataParallel`
    wraps, so gradients are averaged over ranks in ``backward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        return self.model.training_step(batch)
