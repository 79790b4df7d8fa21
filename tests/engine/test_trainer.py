import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tagraph.engine import (
    ConfigMismatchError,
    NonFiniteLossError,
    Trainer,
    load_checkpoint,
)
from tagraph.engine.trainer import _config_diff


class TinyModel(nn.Module):
    def __init__(self, nan_at_step: int | None = None):
        super().__init__()
        self.lin = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
        self.nan_at_step = nan_at_step
        self.calls = 0
        self.config = {"hidden": 16, "opt": {"lr": 0.05}}

    def training_step(self, batch):
        x, y = batch
        loss = ((self.lin(x).squeeze(-1) - y) ** 2).mean()
        self.calls += 1
        if self.nan_at_step is not None and self.calls >= self.nan_at_step:
            loss = loss * float("nan")
        return loss, {"mse": float(loss.detach())}

    def validation_step(self, batch):
        x, y = batch
        return {"loss": float(((self.lin(x).squeeze(-1) - y) ** 2).mean())}


def make_loader(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)


def make_trainer(model, out_dir=None, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    return Trainer(model, opt, scheduler=sched, out_dir=out_dir, seed=1, progress=False, **kw)


def test_loss_falls_and_files(tmp_path):
    torch.manual_seed(0)
    model = TinyModel()
    trainer = make_trainer(model, tmp_path)
    hist = trainer.fit(make_loader(), 5, val_loader=make_loader(1))
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3, 4, 5]
    best = min(hist, key=lambda r: r["val_loss"])
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert ckpt["epoch"] == best["epoch"] == hist[-1]["best_epoch"]
    assert not list(tmp_path.glob("*.tmp"))


def test_select_max_with_val_fn(tmp_path):
    model = TinyModel()
    trainer = make_trainer(model, tmp_path)
    scores = iter([0.1, 0.5, 0.3])
    hist = trainer.fit(make_loader(), 3, val_fn=lambda m: {"mAP": next(scores)},
                       select="mAP", mode="max")
    assert hist[-1]["best_epoch"] == 2
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 2
    with pytest.raises(KeyError, match="selection metric"):
        make_trainer(TinyModel(), tmp_path / "b").fit(
            make_loader(), 1, val_fn=lambda m: {"x": 1.0}, select="mAP")


def test_resume_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    ref = TinyModel()
    init = {k: v.clone() for k, v in ref.state_dict().items()}
    hist_ref = make_trainer(ref, tmp_path / "a").fit(make_loader(), 4, val_loader=make_loader(1))

    m1 = TinyModel()
    m1.load_state_dict(init)
    make_trainer(m1, tmp_path / "b").fit(make_loader(), 2, val_loader=make_loader(1))
    # Disturb the global RNGs: resume must restore them from the checkpoint.
    torch.manual_seed(1234)
    m2 = TinyModel()
    t2 = make_trainer(m2, tmp_path / "b")
    hist = t2.fit(make_loader(), 4, val_loader=make_loader(1), resume=True)
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    for a, b in zip(hist_ref, hist):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6, abs=1e-7)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(m2.state_dict()[k], v)
    assert t2.step == 4 * 8
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3, 4]


def test_nan_loss_raises_and_keeps_checkpoint(tmp_path):
    model = TinyModel(nan_at_step=8 * 2 + 3)  # third batch of epoch 3
    trainer = make_trainer(model, tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, step 19.*last\.pt"):
        trainer.fit(make_loader(), 5)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_config_mismatch_names_keys(tmp_path):
    model = TinyModel()
    make_trainer(model, tmp_path).fit(make_loader(), 1)
    other = TinyModel()
    other.config = {"hidden": 32, "opt": {"lr": 0.05}, "extra": True}
    with pytest.raises(ConfigMismatchError, match="2 key") as err:
        load_checkpoint(tmp_path / "last.pt", other)
    assert "hidden" in str(err.value) and "extra" in str(err.value)
    assert "opt.lr" not in str(err.value)
    with pytest.raises(ConfigMismatchError, match="hidden"):
        make_trainer(other, tmp_path).fit(make_loader(), 2, resume=True)
    assert _config_diff({"a": (1, 2)}, {"a": [1, 2]}) == {}
