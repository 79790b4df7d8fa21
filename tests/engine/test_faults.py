"""Faults of a training run (issue #15): a kill between the two checkpoint writes, a
progress bar that must not change training, unusable checkpoints, a diverging loss,
``epochs = 0``, Ctrl-C and a full disk. Each must end in one line naming the file or key."""

from __future__ import annotations

import errno
import json

import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.loader import DataLoader as GraphLoader

from tagraph.cli import main
from tagraph.engine import NonFiniteLossError, Trainer, load_checkpoint, runner
from tagraph.engine import trainer as trainer_mod
from tagraph.engine.runner import write_config
from tagraph.engine.trainer import (
    CheckpointError,
    TrainingInterrupted,
    load_model_weights,
    read_checkpoint,
)
from tagraph.models import ECM
from tests.engine.helpers import StubModel, stub_checkpoint, stub_config, stub_run
from tests.engine.test_trainer import TinyModel, make_loader, make_trainer
from tests.models.wtal_utils import snippet_video

SCORES = [0.1, 0.5, 0.3, 0.6]  # improving epochs: 1, 2, 4


def _fit(model, out, epochs=4, resume=False):
    trainer = make_trainer(model, out)
    hist = trainer.fit(make_loader(), epochs, val_fn=lambda m: {"mAP": SCORES[trainer.epoch]},
                       select="mAP", mode="max", resume=resume)
    return trainer, hist


def _failing_save(monkeypatch, fail_at: int, exc: BaseException):
    calls = {"n": 0}
    real = trainer_mod._atomic_torch_save

    def save(obj, path):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise exc
        real(obj, path)

    monkeypatch.setattr(trainer_mod, "_atomic_torch_save", save)
    return calls


def _epoch(path):
    return torch.load(path, weights_only=True)["epoch"]


# ----------------------------------------------------------------------------- item 1
@pytest.mark.parametrize("fail_at", [2, 3, 4, 5])
def test_kill_between_checkpoint_writes_resumes_like_uninterrupted(tmp_path, monkeypatch,
                                                                    fail_at):
    # Writes: epoch 1 best, last (1, 2); epoch 2 best, last (3, 4); epoch 3 last (5); ...
    torch.manual_seed(0)
    ref = TinyModel()
    init = {k: v.clone() for k, v in ref.state_dict().items()}
    _, hist_ref = _fit(ref, tmp_path / "ref")

    model = TinyModel()
    model.load_state_dict(init)
    with monkeypatch.context() as m:
        _failing_save(m, fail_at, OSError(errno.EIO, "killed"))
        with pytest.raises(OSError, match="killed"):
            _fit(model, tmp_path / "run")
    run = tmp_path / "run"
    if (run / "last.pt").exists() and (run / "best.pt").exists():
        # never the old failure: a best.pt older than the best epoch that last.pt names
        last = torch.load(run / "last.pt", weights_only=True)
        assert _epoch(run / "best.pt") in (last["best_epoch"], last["epoch"] + 1)
    torch.manual_seed(99)  # resume restores the RNGs itself
    model2 = TinyModel()
    model2.load_state_dict(init)  # as a re-run would build it (fail_at=2: nothing saved)
    trainer, hist = _fit(model2, run, resume=True)
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert [r["loss"] for r in hist] == pytest.approx([r["loss"] for r in hist_ref], rel=1e-6)
    assert [r["best_epoch"] for r in hist] == [r["best_epoch"] for r in hist_ref] == [1, 2, 2, 4]
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(model2.state_dict()[k], v)
    best, best_ref = (torch.load(p / "best.pt", weights_only=True) for p in (run,
                                                                            tmp_path / "ref"))
    assert best["epoch"] == best_ref["epoch"] == 4
    for k, v in best_ref["model"].items():
        torch.testing.assert_close(best["model"][k], v)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3, 4]
    assert not list(run.glob(".*.tmp"))


def test_best_written_before_last(tmp_path, monkeypatch):
    calls = _failing_save(monkeypatch, 4, OSError(errno.EIO, "killed"))
    with pytest.raises(OSError):
        _fit(TinyModel(), tmp_path)
    assert calls["n"] == 4
    assert _epoch(tmp_path / "best.pt") == 2 and _epoch(tmp_path / "last.pt") == 1


def test_resume_with_inconsistent_best_is_one_clear_error(tmp_path):
    _fit(TinyModel(), tmp_path, epochs=3)  # best epoch 2, last epoch 3
    other = tmp_path / "other"
    _fit(TinyModel(), other, epochs=1)
    (other / "best.pt").replace(tmp_path / "best.pt")  # a best.pt of epoch 1
    with pytest.raises(CheckpointError) as err:
        _fit(TinyModel(), tmp_path, resume=True)
    msg = str(err.value)
    assert "best.pt' holds epoch 1" in msg and "names epoch 2 as the best" in msg
    assert "\n" not in msg
    (tmp_path / "best.pt").unlink()
    with pytest.raises(CheckpointError, match=r"best\.pt' is missing.*names epoch 2"):
        _fit(TinyModel(), tmp_path, resume=True)


def test_fresh_run_removes_best_of_an_earlier_run(tmp_path):
    _fit(TinyModel(), tmp_path, epochs=2)
    trainer = make_trainer(TinyModel(), tmp_path)
    # no epoch improves (non-finite metric): an old best.pt must not survive
    trainer.fit(make_loader(), 1, val_fn=lambda m: {"mAP": float("nan")}, select="mAP",
                mode="max")
    assert not (tmp_path / "best.pt").exists()


def test_resumed_run_that_does_not_reproduce_a_newer_best_warns(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _failing_save(m, 4, OSError(errno.EIO, "killed"))
        with pytest.raises(OSError):
            _fit(TinyModel(), tmp_path)
    SCORES_LOW = [0.1, 0.05, 0.3, 0.6]  # epoch 2 no longer improves after the resume
    trainer = make_trainer(TinyModel(), tmp_path)
    with pytest.warns(UserWarning, match="holds epoch 2 of the interrupted run"):
        trainer.fit(make_loader(), 2, val_fn=lambda m: {"mAP": SCORES_LOW[trainer.epoch]},
                    select="mAP", mode="max", resume=True)


# ----------------------------------------------------------------------------- item 2
def _snippet_graphs():
    return [snippet_video(12 + 3 * i, c=3, d=8, vid=f"v{i}", labels=(i % 3,), seed=i)
            for i in range(8)]


def _train_ecm(progress: bool, tmp_path):
    torch.manual_seed(0)
    model = ECM(8, 3, hidden_channels=16, dropout=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = GraphLoader(_snippet_graphs(), batch_size=3, shuffle=True)
    trainer = Trainer(model, opt, seed=3, progress=progress, out_dir=tmp_path)
    hist = trainer.fit(loader, 2)
    return model, hist


def test_progress_bar_does_not_change_training(tmp_path, capsys):
    a, hist_a = _train_ecm(False, tmp_path / "quiet")
    b, hist_b = _train_ecm(True, tmp_path / "bar")
    assert [r["loss"] for r in hist_a] == [r["loss"] for r in hist_b]
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k


def test_progress_bar_does_not_iterate_the_loader_twice(tmp_path):
    iters = {"n": 0}

    class Counting(DataLoader):
        def __iter__(self):
            iters["n"] += 1
            return super().__iter__()

    model = TinyModel()
    loader = Counting(make_loader().dataset, batch_size=8, shuffle=True)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), progress=True).fit(loader, 2)
    assert iters["n"] == 2  # once per epoch, bar or not


# ----------------------------------------------------------------------------- item 4
def _bad_checkpoints(tmp_path):
    good = stub_checkpoint(tmp_path / "good.pt")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    rand = tmp_path / "random.pt"
    rand.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    return {truncated: "is truncated or corrupt", rand: "is not a tagraph checkpoint",
            foreign: "is not a tagraph checkpoint", tensor: "is not a tagraph checkpoint",
            empty: "is empty (truncated or corrupt)"}


def test_read_checkpoint_names_the_file(tmp_path):
    for path, text in _bad_checkpoints(tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(path)
        msg = str(err.value)
        assert str(path) in msg and text in msg and "\n" not in msg, msg
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("command", ["predict", "evaluate", "plot"])
def test_cli_bad_checkpoints_exit_2_with_one_line(tmp_path, monkeypatch, capsys, command):
    stub_run(monkeypatch, covered=["v0"])
    for path, text in _bad_checkpoints(tmp_path).items():
        args = {"predict": ["predict", "--checkpoint", str(path), "--out",
                            str(tmp_path / "r.json"), "--quiet", "--device", "cpu"],
                "evaluate": ["evaluate", "--checkpoint", str(path), "--device", "cpu"],
                "plot": ["plot", "--results", str(tmp_path / "r.json"), "--video", "v0",
                         "--checkpoint", str(path)]}[command]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"tagraph {command}: error:") and "\n" not in err, err
        assert str(path) in err and text in err and "Traceback" not in err


def test_resume_from_corrupt_last_is_one_line(tmp_path):
    _fit(TinyModel(), tmp_path, epochs=1)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[:100])
    with pytest.raises(CheckpointError, match=r"last\.pt' is truncated or corrupt"):
        _fit(TinyModel(), tmp_path, resume=True)
    torch.save({"model": TinyModel().state_dict()}, tmp_path / "last.pt")  # not a Trainer's
    with pytest.raises(CheckpointError, match=r"last\.pt' is not a tagraph checkpoint \(no "
                                              r"'optimizer'"):
        _fit(TinyModel(), tmp_path, resume=True)


def test_feature_dimension_and_method_mismatch(tmp_path, monkeypatch, capsys):
    path = stub_checkpoint(tmp_path / "best.pt")  # StubModel(2): trained on D=2
    ckpt = read_checkpoint(path)
    with pytest.raises(CheckpointError) as err:
        load_model_weights(StubModel(5), ckpt, path, in_channels=5)
    assert str(err.value) == (f"checkpoint '{path}' was trained on features of dimension 2, "
                              "but the data's features (field 'features') have dimension 5")
    with pytest.raises(CheckpointError, match="was trained with method 'stub', but the config "
                                              "asks for method 'grn' \\(key 'method'\\)"):
        load_model_weights(StubModel(2), ckpt, path, method="grn")
    with pytest.raises(CheckpointError, match="does not fit the model.*missing, e.g. 'w'"):
        load_model_weights(torch.nn.ParameterDict({"w": torch.nn.Parameter(torch.zeros(1))}),
                           ckpt, path)
    # through the CLI: data with another feature dimension than the checkpoint's
    data = stub_run(monkeypatch, covered=["v0"])
    monkeypatch.setattr(data, "in_channels", 7)
    assert main(["predict", "--checkpoint", str(path), "--out", str(tmp_path / "r.json"),
                 "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err
    assert "features of dimension 2" in err and "have dimension 7" in err


def test_load_checkpoint_uses_the_helper(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"garbage!")
    with pytest.raises(CheckpointError, match="not a PyTorch file"):
        load_checkpoint(path, TinyModel())


# ----------------------------------------------------------------------------- item 5
def test_non_finite_loss_names_the_config_keys(tmp_path, monkeypatch, capsys):
    model = TinyModel(nan_at_step=1)
    with pytest.raises(NonFiniteLossError) as err:
        make_trainer(model, tmp_path).fit(make_loader(), 2)
    msg = str(err.value)
    assert "optim.lr, now 0.02" in msg and "train.grad_clip, now off" in msg
    assert "\n" not in msg
    stub_run(monkeypatch, covered=["v0"])

    class Diverging(StubModel):
        def training_step(self, batch):
            return self.lin(batch.x).sum() * float("inf"), {}

    monkeypatch.setitem(runner.METHODS, "stub", runner.MethodSpec(
        "stub", None, lambda cfg, d, c: Diverging(d), "test"))
    cfg = stub_config()
    cfg["optim"]["lr"] = 1e6
    cfg["train"]["grad_clip"] = 5.0
    path = write_config(cfg, tmp_path / "cfg")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "--quiet",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tagraph train: error: non-finite loss") and "\n" not in err
    assert "optim.lr, now 1e+06" in err and "train.grad_clip, now 5" in err


def test_zero_epochs_is_a_clear_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match=r"train\.epochs.*>= 1, got 0"):
        make_trainer(TinyModel(), tmp_path).fit(make_loader(), 0)
    stub_run(monkeypatch, covered=["v0"])
    cfg = stub_config()
    cfg["train"]["epochs"] = 0
    path = write_config(cfg, tmp_path / "cfg")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "--quiet",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.epochs" in err and "best.pt" not in err and "\n" not in err


def test_ctrl_c_during_train_says_how_to_resume(tmp_path, monkeypatch, capsys):
    stub_run(monkeypatch, covered=["v0"])
    calls = {"n": 0}

    class Interrupted(StubModel):
        def training_step(self, batch):
            calls["n"] += 1
            if calls["n"] == 2:  # second epoch (one step per epoch)
                raise KeyboardInterrupt
            return super().training_step(batch)

    monkeypatch.setitem(runner.METHODS, "stub", runner.MethodSpec(
        "stub", None, lambda cfg, d, c: Interrupted(d), "test"))
    cfg = stub_config()
    cfg["train"]["epochs"] = 3
    path = write_config(cfg, tmp_path / "cfg")
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err == (f"tagraph train: interrupted after 1 of 3 epochs ('{out / 'last.pt'}' holds "
                   f"epoch 1); continue with: tagraph train --config {out / 'config.toml'} "
                   f"--out {out} --resume")
    assert _epoch(out / "last.pt") == 1
    # and the printed command does continue
    monkeypatch.setitem(runner.METHODS, "stub", runner.MethodSpec(
        "stub", None, lambda cfg, d, c: StubModel(d), "test"))
    assert main(["train", "--config", str(out / "config.toml"), "--out", str(out), "--resume",
                 "--quiet", "--device", "cpu", "--no-test"]) == 0
    assert _epoch(out / "last.pt") == 3


def test_trainer_interrupt_before_any_checkpoint(tmp_path):
    class Stop(TinyModel):
        def training_step(self, batch):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="during epoch 1 of 2; no checkpoint yet"):
        make_trainer(Stop(), tmp_path).fit(make_loader(), 2)


def _enospc_at(monkeypatch, target_name: str):
    """torch.save / text writes into a file whose name is target_name fail with ENOSPC."""
    import tagraph.io.atomic as atomic

    real_fdopen = atomic.os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return self.f.__exit__(*a)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, *a, **k):
        f = real_fdopen(fd, *a, **k)
        name = str(f.name) if not isinstance(f.name, int) else ""
        if target_name in name or target_name in _open_names.get(fd, ""):
            return Full(f)
        return f

    _open_names: dict[int, str] = {}
    real_open = atomic.os.open

    def osopen(path, *a, **k):
        fd = real_open(path, *a, **k)
        _open_names[fd] = str(path)
        return fd

    monkeypatch.setattr(atomic.os, "open", osopen)
    monkeypatch.setattr(atomic.os, "fdopen", fdopen)


@pytest.mark.parametrize("target", ["last.pt", "best.pt", "metrics.jsonl"])
def test_disk_full_during_train_is_one_line(tmp_path, monkeypatch, capsys, target):
    stub_run(monkeypatch, covered=["v0"])
    path = write_config(stub_config(), tmp_path / "cfg")
    out = tmp_path / "run"
    _enospc_at(monkeypatch, f".{target}.")
    assert main(["train", "--config", str(path), "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tagraph train: error: cannot write '{out / target}': No space left on "
                   "device; nothing was left half-written")
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_disk_full_writing_results_is_one_line(tmp_path, monkeypatch, capsys, command):
    stub_run(monkeypatch, covered=["v0"])
    ckpt = stub_checkpoint(tmp_path / "best.pt")
    res = tmp_path / "out" / "r.json"
    res.parent.mkdir()
    res.write_text("{}")  # an older results file survives
    _enospc_at(monkeypatch, ".r.json.")
    args = (["predict", "--checkpoint", str(ckpt), "--out", str(res), "--quiet"]
            if command == "predict" else
            ["evaluate", "--checkpoint", str(ckpt), "--pred", str(res)])
    assert main(args + ["--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tagraph {command}: error: cannot write '{res}': No space left on device; "
                   "nothing was left half-written")
    assert res.read_text() == "{}" and not list(res.parent.glob(".*.tmp"))


def test_read_only_and_other_os_errors(tmp_path, monkeypatch, capsys):
    from tagraph.commands._common import run_guarded

    def ro():
        raise OSError(errno.EROFS, "Read-only file system", "/x/y.pt")

    assert run_guarded("train", ro) == 2
    assert capsys.readouterr().err.strip() == (
        "tagraph train: error: cannot write '/x/y.pt': Read-only file system; nothing was "
        "left half-written")

    def other():
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError):
        run_guarded("train", other)
