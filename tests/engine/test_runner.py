"""Runner: resume after SIGKILL, 2-process Gloo DDP, configs, splits, missing datasets, the
warning when predictions are empty or miss most test videos."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from tagraph.engine.config import ConfigError, available_configs, load_config
from tagraph.engine.runner import (
    METHODS,
    DatasetNotFoundError,
    EmptyPredictionsWarning,
    coverage_report,
    coverage_warning,
    load_data,
    predict_checkpoint,
    split_train_val,
    train,
)
from tagraph.io import Detections
from tests.engine.helpers import (
    TEST,
    annotation,
    detections,
    ground_truth,
    stub_checkpoint,
    stub_config,
    stub_run,
)

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "engine" / "_tiny_run.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time")
    return rows


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_data")


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted(tmp_path, tiny_root):
    epochs = 6
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, str(DRIVER), str(ref), str(tiny_root), "--epochs",
                    str(epochs), "--batch-size", "1"], check=True, env=_env(), timeout=300)
    run = tmp_path / "killed"
    cmd = [sys.executable, str(DRIVER), str(run), str(tiny_root), "--epochs", str(epochs),
           "--batch-size", "1", "--slow", "0.05"]
    proc = subprocess.Popen(cmd, env=_env())
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            m = run / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= 2:
                break
            if proc.poll() is not None:
                pytest.fail("the training process ended before it could be killed")
            time.sleep(0.02)
        time.sleep(0.15)  # into the next epoch's training steps
        assert proc.poll() is None, "finished before the kill: slow it down"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = len(_records(run))
    assert 2 <= done < epochs
    subprocess.run(cmd + ["--resume"], check=True, env=_env(), timeout=300)
    a, b = _records(ref), _records(run)
    assert len(b) == epochs
    assert a == b
    wa, wb = _weights(ref / "last.pt"), _weights(run / "last.pt")
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ea = json.loads((ref / "eval_test.json").read_text())
    eb = json.loads((run / "eval_test.json").read_text())
    assert ea["mAP"] == eb["mAP"]


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path, tiny_root):
    one = tmp_path / "one"
    subprocess.run([sys.executable, str(DRIVER), str(one), str(tiny_root), "--epochs", "3",
                    "--batch-size", "4"], check=True, env=_env(), timeout=300)
    two = tmp_path / "two"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", str(DRIVER), str(two), str(tiny_root), "--epochs",
                    "3", "--batch-size", "4"], check=True, env=_env(), timeout=300,
                   capture_output=True)
    a, b = _records(one), _records(two)
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        assert ra["step"] == rb["step"] == 2 * ra["epoch"]  # same global batches
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
        assert ra["val_mAP"] == pytest.approx(rb["val_mAP"], abs=1e-6)
    wa, wb = _weights(one / "last.pt"), _weights(two / "last.pt")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def test_every_method_has_a_config_per_dataset():
    names = set(available_configs())
    for m in ("pgcn", "mil", "grn", "ecm", "backtal", "issf"):
        assert m in METHODS
        for ds in ("synthetic", "thumos14", "activitynet13"):
            assert f"{m}/{ds}" in names
            cfg = load_config(f"{m}/{ds}")
            assert cfg["method"] == m and cfg["data"]["dataset"] == ds


def test_ablation_switches_are_config_keys():
    # Each paper's ablation is a documented key of the shipped configs (settable by --set).
    switches = {"grn": "model.regularize", "ecm": "model.post_stream",
                "backtal": "model.use_clicks", "issf": "model.use_refinement"}
    for m, key in switches.items():
        for ds in ("synthetic", "thumos14", "activitynet13"):
            cfg = load_config(f"{m}/{ds}", [f"{key}=false"])
            section, name = key.split(".")
            assert cfg[section][name] is False


def test_model_detection_overrides_and_synthetic_variant(tmp_path):
    from tagraph.engine.runner import build_model

    cfg = load_config("mil/synthetic", ["data.variant=i3d512"])
    cfg["model"]["detection"] = {"class_threshold": 0.6, "thresholds": [0.2, 0.4]}
    model = build_model(cfg, 8, 3)
    det = model.detection_config
    assert det.class_threshold == 0.6 and det.thresholds == (0.2, 0.4)
    assert det.normalize == "minmax"  # the other fields keep the method's defaults
    cfg["model"]["detection"] = {"class_treshold": 0.6}
    with pytest.raises(ValueError, match="class_treshold"):
        build_model(cfg, 8, 3)
    cfg = load_config("mil/synthetic", ["data.variant=i3d500", f"data.root={tmp_path}"])
    with pytest.raises(ValueError, match="data.variant"):
        load_data(cfg)


def test_overrides_and_bad_keys():
    cfg = load_config("grn/synthetic", ["optim.lr=3e-4", "train.epochs=7", "model.mu=2"])
    assert cfg["optim"]["lr"] == 3e-4 and cfg["train"]["epochs"] == 7
    assert cfg["model"]["mu"] == 2.0 and isinstance(cfg["model"]["mu"], float)
    with pytest.raises(ConfigError, match="valid keys: .*model.mu"):
        load_config("grn/synthetic", ["model.muu=1"])


def test_split_is_fixed_and_disjoint():
    tr, val = split_train_val(50, 0.2, 1234)
    assert len(val) == 10 and not set(tr) & set(val) and sorted(tr + val) == list(range(50))
    assert split_train_val(50, 0.2, 1234) == (tr, val)


def test_missing_dataset_says_where_to_get_it(tmp_path):
    cfg = load_config("ecm/thumos14", [f"data.root={json.dumps(str(tmp_path / 'nope'))}"])
    with pytest.raises(DatasetNotFoundError) as e:
        load_data(cfg)
    msg = str(e.value)
    assert "i3d_features" in msg and "annotations/thumos14.json" in msg
    assert "datasets/thumos14/README.md" in msg and "actionformer" in msg.lower()


# --------------------------------------------------------------------------- missing predictions
def test_coverage_report_counts_positive_videos_without_predictions():
    gt = ground_truth()
    dets = Detections.concat([detections(["v0", "v0", "v4"]), detections(["elsewhere"])])
    rep = coverage_report(dets, gt, TEST)
    assert (rep.videos, rep.videos_with_predictions, rep.positive_videos) == (5, 2, 4)
    assert rep.missing == ("v1", "v2", "v3") and rep.positive_videos_without_predictions == 3
    assert rep.predictions == 3  # the detection on a video not evaluated is not counted
    assert rep.to_dict() == {"videos_with_predictions": 2, "positive_videos": 4,
                             "positive_videos_without_predictions": 3}


@pytest.mark.parametrize("covered,warns", [
    ([], True),                      # no predictions at all
    (["v0"], True),                  # 3 of 4 positive videos without predictions
    (["v4"], True),                  # predictions only where there is no ground truth
    (["v0", "v1"], False),           # exactly half: not "more than half"
    (["v0", "v1", "v2", "v3"], False),
])
def test_coverage_warning_rule(covered, warns):
    rep = coverage_report(detections(covered), ground_truth(), TEST)
    msg = coverage_warning(rep)
    assert (msg is not None) == warns
    if warns:
        assert "v1" in msg and "detection thresholds" in msg and "tagraph evaluate" in msg
        assert ("no predictions at all" in msg) == (not covered)


def test_coverage_warning_names_at_most_five_videos():
    gt = {f"x{i}": annotation(f"x{i}") for i in range(8)}
    msg = coverage_warning(coverage_report(detections(["x7"]), gt, list(gt)), "validation")
    assert msg.startswith("7 of the 8 validation videos with ground truth have no prediction")
    assert "e.g. x0, x1, x2, x3, x4, ..." in msg and "x5" not in msg


@pytest.mark.parametrize("evaluate", [True, False])
def test_predict_checkpoint_warns_when_most_videos_lack_predictions(
        tmp_path, monkeypatch, caplog, evaluate):
    stub_run(monkeypatch, covered=["v0"])
    ckpt = stub_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "pred" / "results.json"
    with caplog.at_level(logging.WARNING, logger="tagraph.engine"), \
            pytest.warns(EmptyPredictionsWarning, match="3 of the 4 test videos") as rec:
        s = predict_checkpoint(ckpt, out, device="cpu", progress=False, evaluate=evaluate)
    assert issubclass(rec[0].category, RuntimeWarning)
    assert "v1, v2, v3" in str(rec[0].message)
    assert any("3 of the 4 test videos" in r.getMessage() for r in caplog.records)
    assert s["positive_videos_without_predictions"] == 3 and s["videos_with_predictions"] == 1
    assert s["warning"] == str(rec[0].message)
    # predict / evaluate --checkpoint write the results file they were asked for, nothing else
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]


def test_predict_checkpoint_full_coverage_is_quiet(tmp_path, monkeypatch):
    stub_run(monkeypatch, covered=TEST)
    ckpt = stub_checkpoint(tmp_path / "best.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyPredictionsWarning)
        s = predict_checkpoint(ckpt, tmp_path / "r.json", device="cpu", progress=False)
    assert s["warning"] is None and s["positive_videos_without_predictions"] == 0
    assert s["videos_with_predictions"] == 5


def test_train_warns_on_empty_test_predictions(tmp_path, monkeypatch):
    data = stub_run(monkeypatch, covered=[])
    with pytest.warns(EmptyPredictionsWarning, match="no predictions at all on the 5 test"):
        s = train(stub_config(), tmp_path, device="cpu", progress=False, data=data)
    assert s["predictions"] == 0 and s["positive_videos_without_predictions"] == 4
    saved = json.loads((tmp_path / "eval_test.json").read_text())
    assert saved["videos_with_predictions"] == 0 and "v0, v1, v2, v3" in saved["warning"]
    assert "WARNING no predictions at all" in (tmp_path / "train.log").read_text()


@pytest.mark.parametrize("method", ["mil", "grn", "ecm", "backtal", "issf"])
def test_weak_methods_fit_input_norm_and_detect_on_every_test_video(tmp_path, method):
    # Non-negative, offset features (what broke ECM / BackTAL / ISSF on unseen data): one
    # epoch through the runner fits the input statistics, and every positive test video
    # gets detections (relative thresholds + the top-1 class fallback).
    tiny = dict(num_train=8, num_test=4, feature_dim=16, duration_median=30.0,
                duration_sigma=0.2, duration_min=20.0, duration_max=40.0,
                nonnegative="softplus", feature_scale=3.0)
    cfg = load_config(f"{method}/synthetic", [
        f"data.root={tmp_path / 'data'}", "train.epochs=1", "train.batch_size=4",
        "model.hidden_channels=16"])
    cfg["data"]["synthetic"] = tiny
    if method == "grn":
        cfg["model"]["embed_channels"] = [16, 8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(cfg, tmp_path / "run", progress=False)
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    mean = ckpt["model"]["input_norm.mean"]
    assert bool(ckpt["model"]["input_norm.fitted"]) and float(mean.min()) > 0.5  # fitted
    assert summary["positive_videos"] == 4
    assert summary["positive_videos_without_predictions"] == 0 and summary["warning"] is None


@pytest.mark.parametrize("method", ["mil", "backtal"])
def test_resample_eval_false_reads_validation_and_test_whole(tmp_path, method):
    # data.max_snippets resamples every subset by default (the official ECM / BackTAL
    # code); with data.resample_eval = false only the training videos, and the validation
    # split holds the same videos as before, read whole.
    sets = [f"data.root={json.dumps(str(tmp_path))}", "data.max_snippets=20"]
    fixed = load_data(load_config(f"{method}/synthetic", sets))
    whole = load_data(load_config(f"{method}/synthetic", [*sets, "data.resample_eval=false"]))
    plain = load_data(load_config(f"{method}/synthetic", sets[:1]))
    for a, b, c in ((fixed.train, whole.train, plain.train), (fixed.val, whole.val, plain.val),
                    (fixed.test, whole.test, plain.test)):
        assert [g.video_id for g in a] == [g.video_id for g in b] == [g.video_id for g in c]
    assert max(g.num_nodes for g in fixed.val + fixed.test) == 20
    assert all(g.num_nodes <= 20 for g in whole.train)
    for g, ref in zip(whole.val + whole.test, plain.val + plain.test):
        assert g.num_nodes == ref.num_nodes > 0 and torch.equal(g.x, ref.x)
    assert max(g.num_nodes for g in whole.test) > 20
