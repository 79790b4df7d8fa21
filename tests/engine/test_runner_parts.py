"""Runner pieces: optimizer / schedule from config, AMP and gradient clipping in the Trainer."""

from __future__ import annotations

import pytest
import torch

from tagraph.engine import Trainer
from tagraph.engine.runner import build_optimizer, build_scheduler, resolve_device


class _Lin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def training_step(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.lin(x).squeeze(-1).float(), y), {}


def _batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    return [(x[i:i + 4], y[i:i + 4]) for i in range(0, 16, 4)]


@pytest.mark.parametrize("name,kw", [("step", {"step_size": 2, "gamma": 0.5}),
                                     ("multistep", {"milestones": [1, 3], "gamma": 0.1}),
                                     ("cosine", {"warmup_epochs": 1}), ("none", {})])
def test_schedule_from_config(name, kw):
    m = _Lin()
    cfg = {"optim": {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
           "schedule": {"name": name, **kw}, "train": {"epochs": 4}}
    opt = build_optimizer(cfg, m)
    sched = build_scheduler(cfg, opt)
    hist = Trainer(m, opt, scheduler=sched, progress=False).fit(_batches(), 4)
    lrs = [h["lr"] for h in hist]
    if name == "none":
        assert sched is None and lrs == [0.1] * 4
    elif name == "step":
        assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05])
    elif name == "multistep":
        assert lrs == pytest.approx([0.1, 0.01, 0.01, 0.001])
    else:
        assert lrs[0] < lrs[1] and lrs[1] > lrs[3]  # warm-up, then cosine decay


def test_bad_optimizer_and_schedule_names():
    m = _Lin()
    with pytest.raises(ValueError, match="optim.name"):
        build_optimizer({"optim": {"name": "lamb"}}, m)
    opt = build_optimizer({"optim": {"name": "adam"}}, m)
    with pytest.raises(ValueError, match="schedule.name"):
        build_scheduler({"schedule": {"name": "poly"}, "train": {"epochs": 1}}, opt)


def test_amp_on_cpu_trains_and_clipping_bounds_the_step():
    torch.manual_seed(0)
    m = _Lin()
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    hist = Trainer(m, opt, amp=True, progress=False).fit(_batches(), 5)
    assert hist[-1]["loss"] < hist[0]["loss"]
    # clipping: one step with a huge learning rate moves the weights by at most lr * clip
    m = _Lin()
    before = [p.detach().clone() for p in m.parameters()]
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    Trainer(m, opt, grad_clip=0.01, progress=False).fit(_batches()[:1], 1)
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(m.parameters(), before)))
    assert float(moved) <= 0.01 + 1e-6


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
