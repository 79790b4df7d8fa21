"""Driver of the resume / distributed tests: a tiny linear MIL model through the runner.

    python tests/engine/_tiny_run.py OUT ROOT [--epochs N] [--resume] [--batch-size B]

(also under ``torchrun``). Registers method ``tiny_mil`` and trains it on a tiny
synthetic dataset with :func:`tagraph.engine.runner.train`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.utils import scatter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tagraph.engine import runner  # noqa: E402
from tagraph.models.wtal import WeaklySupervisedTAL, batch_vectors  # noqa: E402
from tagraph.ops.cas import CASDetectionConfig  # noqa: E402

TINY = dict(num_train=10, num_test=6, num_classes=4, group_sizes=[2, 1, 1], feature_dim=32,
            duration_median=40.0, duration_max=80.0)


class TinyMIL(WeaklySupervisedTAL):
    """Linear CAS, mean-pooled video logits, BCE averaged over videos (no dropout / BN:
    a global batch split over ranks gives the same gradient)."""

    def __init__(self, in_channels: int, num_classes: int, slow: float = 0.0) -> None:
        super().__init__(CASDetectionConfig(thresholds=(0.3, 0.5)))
        self.lin = torch.nn.Linear(in_channels, num_classes)
        self.slow = slow

    def video_logits(self, batch):
        b, _, n = batch_vectors(batch)
        logits = self.lin(batch.x)
        return logits, scatter(logits, b, 0, dim_size=n, reduce="mean")

    def training_step(self, batch):
        if self.slow:
            import time

            time.sleep(self.slow)
        _, v = self.video_logits(batch)
        loss = F.binary_cross_entropy_with_logits(v, batch.y.float())
        return loss, {}

    def localization_outputs(self, batch):
        logits, v = self.video_logits(batch)
        return torch.sigmoid(logits), torch.sigmoid(v), None


runner.register_method(runner.MethodSpec(
    "tiny_mil", None, lambda cfg, d, c: TinyMIL(d, c, **cfg.get("model", {})), "test"))


def config(root: str, epochs: int, batch_size: int, slow: float = 0.0) -> dict:
    return {
        "method": "tiny_mil", "seed": 0,
        "data": {"dataset": "synthetic", "root": root, "size": "small", "data_seed": 0,
                 "train_subset": "train", "test_subset": "test", "val_fraction": 0.2,
                 "split_seed": 1234, "synthetic": dict(TINY)},
        "model": {"slow": slow},
        "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9, "weight_decay": 0.0},
        "schedule": {"name": "step", "step_size": 2, "gamma": 0.5},
        "train": {"epochs": epochs, "batch_size": batch_size, "select": "val_mAP",
                  "mode": "max", "grad_clip": 1.0},
        "predict": {"batch_size": 8},
        "eval": {"tiou": [0.1, 0.5]},
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("root")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--slow", type=float, default=0.0)
    p.add_argument("--resume", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    runner.train(config(a.root, a.epochs, a.batch_size, a.slow), a.out, resume=a.resume,
                 device="cpu", progress=False)


if __name__ == "__main__":
    main()
