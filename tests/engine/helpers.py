"""Hand-made ground truth and detections, and a stubbed run (no dataset, no real model), for
the tests of the "predictions missing" warning of :mod:`tagraph.engine.runner`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch_geometric.data import Data

from tagraph.engine import runner
from tagraph.io import Detections, VideoAnnotation

CLASSES = ["run", "jump"]
TRAIN = ["t0", "t1", "t2"]  # t2 is the validation video
TEST = ["v0", "v1", "v2", "v3", "v4"]  # v4 has no ground truth


def annotation(video: str, positive: bool = True) -> VideoAnnotation:
    """A 10 s video with one 'run' instance at 2-4 s, or none."""
    if not positive:
        return VideoAnnotation(video, "test", 10.0, 25.0)
    return VideoAnnotation(video, "test", 10.0, 25.0, [[2.0, 4.0]], ["run"])


def ground_truth() -> dict[str, VideoAnnotation]:
    """Training videos and test videos v0-v3 with one instance each; v4 without."""
    return {v: annotation(v, v != "v4") for v in TRAIN + TEST}


def detections(videos: Iterable[str]) -> Detections:
    """One exact 'run' detection per video."""
    return Detections.from_records([(v, "run", 0.9, 2.0, 4.0) for v in videos])


class StubModel(torch.nn.Module):
    """A linear map with a trivial training loss (the Trainer contract)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(in_channels, 1)

    def training_step(self, batch):
        return self.lin(batch.x).pow(2).mean(), {}


def _graph(video: str) -> Data:
    return Data(x=torch.randn(3, 2), video_id=video)


def stub_config() -> dict:
    """A config of the stub method: one epoch of one step."""
    return {"method": "stub", "seed": 0,
            "data": {"dataset": "synthetic", "root": "unused"},
            "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
            "schedule": {"name": "none"},
            "train": {"epochs": 1, "batch_size": 2, "select": "val_mAP", "mode": "max"},
            "predict": {"batch_size": 4}, "eval": {"tiou": [0.5]}}


def stub_run(monkeypatch, covered: Sequence[str]) -> runner.RunData:
    """Registers method ``stub`` and replaces the runner's data loading and
    prediction: the predictions hold one detection on every training video and
    on the test videos :obj:`covered`."""
    monkeypatch.setitem(runner.METHODS, "stub", runner.MethodSpec(
        "stub", None, lambda cfg, d, c: StubModel(d), "test"))
    data = runner.RunData([_graph("t0"), _graph("t1")], [_graph("t2")],
                          [_graph(v) for v in TEST], list(CLASSES), ground_truth(), 2)
    monkeypatch.setattr(runner, "load_data", lambda cfg, need_train=True, check=False: data)

    def predict(cfg, model, graphs, classes, device="cpu", progress=False):
        ids = [g.video_id for g in graphs]
        return detections([v for v in ids if v in TRAIN or v in covered])

    monkeypatch.setattr(runner, "predict", predict)
    return data


def stub_checkpoint(path: Path) -> Path:
    """A checkpoint of the stub method, as ``tagraph train`` writes it."""
    torch.save({"model": StubModel(2).state_dict(), "config": stub_config()}, path)
    return path
