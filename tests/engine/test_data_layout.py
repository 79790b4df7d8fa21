"""Any THUMOS14 / ActivityNet-like folder through ``--set`` alone (issue #14): layouts,
file patterns, strides, per-video clicks, ``tagraph data check``, run folders, console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tagraph.cli import main
from tagraph.data import SyntheticTAL
from tagraph.engine.config import ConfigError, load_config
from tagraph.engine.data_check import check_data
from tagraph.engine.runner import load_data
from tests.engine.layout_helpers import TINY, synthetic, write_layout


@pytest.fixture(scope="module")
def stride16(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout16")
    files = synthetic(root / "gen", stride=16)
    a = write_layout(files, root / "a")  # features/<video>.npy, clicks/<video>.json
    b = write_layout(files, root / "b", pattern="{stream}/v_{video}.npy", features="i3d")
    return files, a, b


def _sets(folder: Path, *extra: str) -> list[str]:
    return [f"data.root={json.dumps(str(folder))}", "data.features=features",
            "data.feature_stride=16", *extra]


def _same(g, h) -> None:
    assert g.video_id == h.video_id
    for key in ("x", "pos", "gt_segments", "gt_labels", "y"):
        assert torch.equal(g[key], h[key]), key


def test_two_layouts_give_identical_graphs(stride16):
    files, a, b = stride16
    ca = load_config("ecm/thumos14", _sets(a))
    cb = load_config("ecm/thumos14", [f"data.root={json.dumps(str(b))}", "data.features=i3d",
                                      "data.feature_pattern={stream}/v_{video}.npy",
                                      "data.feature_stride=16"])
    da, db = load_data(ca, check=True), load_data(cb, check=True)
    ref = SyntheticTAL(a.parent / "ref", size={**files.config}, seed=0, subset="test",
                       graph=None, log=False)
    assert len(da.test) == len(db.test) == len(ref) == TINY["num_test"]
    for g, h, r in zip(da.test, db.test, ref):
        _same(g, h)
        _same(g, r)  # the generator's own reader: the same snippet times at stride 16
    assert da.classes == db.classes == ref.classes


def test_stride_4_and_16_times_follow_the_config(tmp_path):
    files = synthetic(tmp_path / "gen", stride=4)
    folder = write_layout(files, tmp_path / "s4")
    cfg = load_config("mil/thumos14", [f"data.root={json.dumps(str(folder))}",
                                       "data.features=features", "data.feature_stride=4"])
    data = load_data(cfg, check=True)
    ref = SyntheticTAL(tmp_path / "ref", size={**files.config}, seed=0, subset="test",
                       graph=None, log=False)
    for g, r in zip(data.test, ref):
        _same(g, r)
    # the wrong stride is caught by the check as a warning naming the key
    wrong = load_config("mil/thumos14", [f"data.root={json.dumps(str(folder))}",
                                         "data.features=features", "data.feature_stride=16"])
    report = check_data(wrong)
    assert report.ok and any("data.feature_stride" in w and "4.0" in w for w in report.warnings)


def test_data_check_cli(stride16, capsys):
    _, a, _ = stride16
    sets = sum((["--set", s] for s in _sets(a, "data.clicks=clicks")), [])
    assert main(["data", "check", "--config", "backtal/thumos14", *sets]) == 0
    out = capsys.readouterr().out
    assert "train (Validation)" in out and "test (Test)" in out and "OK" in out
    assert "10/10" in out  # every training video has features and clicks
    # bare folder mode
    assert main(["data", "check", str(a)]) == 0
    # a missing feature file: exit 1, named
    victim = next((a / "features").glob("*.npy"))
    moved = victim.with_suffix(".bak")
    victim.rename(moved)
    try:
        assert main(["data", "check", "--config", "ecm/thumos14", *sets[:6]]) == 1
        cap = capsys.readouterr()
        assert "training would stop" in cap.out
        assert cap.err.startswith("ERROR: ") and victim.stem in cap.err
        assert "data.feature" in cap.err
    finally:
        moved.rename(victim)


def test_clicks_from_a_folder_of_per_video_files(stride16):
    files, a, _ = stride16
    cfg = load_config("backtal/thumos14", _sets(a, "data.clicks=clicks"))
    data = load_data(cfg, check=True)
    ref = load_config("backtal/thumos14",
                      _sets(a, f"data.clicks={json.dumps(str(files.clicks_file))}"))
    data_ref = load_data(ref)
    for g, h in zip(data.train, data_ref.train):
        bg = h.click_labels == len(data.classes)
        assert torch.equal(g.clicks, h.clicks[bg])


def test_click_outside_the_video_is_an_error(stride16, tmp_path):
    import shutil

    _, a, _ = stride16
    folder = tmp_path / "c"
    shutil.copytree(a, folder)
    f = [p for p in sorted((folder / "clicks").glob("*.json")) if "_test_" not in p.name][0]
    f.write_text(json.dumps({"background_clicks": [9999.0]}))
    cfg = load_config("backtal/thumos14", _sets(folder, "data.clicks=clicks"))
    with pytest.raises(ValueError, match=rf"{f.stem}.*field 'clicks'.*9999"):
        load_data(cfg, check=True)


def test_subset_names_verbatim_then_alias(stride16):
    _, a, _ = stride16
    for train, test in (("Validation", "Test"), ("validation", "test"), ("train", "test")):
        cfg = load_config("mil/thumos14", _sets(a, f"data.train_subset={train}",
                                                f"data.test_subset={test}"))
        assert len(load_data(cfg).test) == TINY["num_test"]
    cfg = load_config("mil/thumos14", _sets(a, "data.test_subset=testing"))
    with pytest.raises(ValueError, match=r"no video in subset 'testing'.*Test"):
        load_data(cfg)


def test_train_and_predict_through_set_alone(stride16, tmp_path, capsys):
    _, a, _ = stride16
    out = tmp_path / "run"
    sets = sum((["--set", s] for s in _sets(a, "data.clicks=clicks", "train.epochs=2",
                                            "model.hidden_channels=16")), [])
    assert main(["train", "--config", "backtal/thumos14", "--out", str(out), "--quiet",
                 "--device", "cpu", *sets]) == 0
    cap = capsys.readouterr()
    assert "epoch 1/2" in cap.out and "val_mAP" in cap.out and "best" in cap.out
    assert "mAP (%)" in cap.out and str(out / "best.pt") in cap.out
    # a second train into the same folder is refused, nothing touched
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["train", "--config", "backtal/thumos14", "--out", str(out), "--quiet",
                 *sets]) == 2
    assert "--resume" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    pred = tmp_path / "pred" / "r.json"
    assert main(["predict", "--checkpoint", str(out / "best.pt"), "--out", str(pred),
                 "--quiet", "--device", "cpu"]) == 0
    assert sorted(p.name for p in pred.parent.iterdir()) == ["r.json"]
    assert json.loads(pred.read_text())["results"]


def test_failed_train_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "ecm/thumos14", "--set",
                 f"data.root={json.dumps(str(tmp_path / 'missing'))}", "--out", str(out)]) == 2
    assert not out.exists() or not any(out.iterdir())
    assert main(["train", "--config", "ecm/synthetic", "--set", "data.crop_snipets=3",
                 "--out", str(out)]) == 2
    assert "did you mean 'data.crop_snippets'" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    assert main(["train", "--config", "ecm/synthetic", "--out", str(out), "--resume"]) == 2
    assert "last.pt" in capsys.readouterr().err


def test_feature_pattern_must_name_the_video():
    with pytest.raises(ConfigError, match="feature_pattern"):
        load_config("ecm/thumos14", ["data.feature_pattern=features.npy"])


def test_proposal_lists_need_the_class_order(stride16):
    _, a, _ = stride16
    sets = _sets(a, "data.proposals_train=proposals/Validation_proposal_list.txt",
                 "data.proposals_test=proposals/Test_proposal_list.txt")
    # the JSON alone may lack classes without instances: SSN labels then fall outside
    report = check_data(load_config("pgcn/thumos14", sets))
    assert report.ok == (len(report.classes) == TINY["num_classes"])
    cfg = load_config("pgcn/thumos14", [*sets, "data.classes=classes.txt"])
    report = check_data(cfg)
    assert report.ok and len(report.classes) == TINY["num_classes"], report.errors
    assert all(s.proposals == s.videos for s in report.subsets)
    data = load_data(cfg, check=True)
    assert data.classes == report.classes and len(data.test) == TINY["num_test"]
