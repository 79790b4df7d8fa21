"""The ``tagraph`` sub-commands: help, errors, and demo -> predict / evaluate / plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tagraph.cli import main
from tagraph.commands import COMMANDS

REPO = Path(__file__).resolve().parents[2]
NAMES = ["demo", "train", "evaluate", "predict", "plot", "info"]


def test_registry_order():
    assert [m.__name__.rsplit(".", 1)[1] for m in COMMANDS] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tagraph {name}")


def test_top_level_help_subprocess():
    out = subprocess.run([sys.executable, "-m", "tagraph", "--help"], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout
    for name in NAMES:
        assert name in out


def test_train_bad_key_lists_valid_keys(capsys):
    assert main(["train", "--config", "grn/synthetic", "--set", "model.bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'model.bogus'" in err and "model.mu" in err
    assert "Traceback" not in err


def test_train_unknown_config(capsys):
    assert main(["train", "--config", "nope/nothing"]) == 2
    assert "pgcn/thumos14" in capsys.readouterr().err


def test_train_missing_dataset(tmp_path, capsys):
    rc = main(["train", "--config", "ecm/thumos14", "--set", f"data.root={tmp_path / 'x'}",
               "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "Expected layout" in err and "i3d_features" in err and "Traceback" not in err


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["neighbor_sampler"] and "cpu" in info["devices"]
    assert "pgcn/thumos14" in info["configs"] and "issf" in info["methods"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    cache = tmp_path_factory.mktemp("cache")
    assert main(["demo", "--size", "tiny", "--out", str(out), "--cache", str(cache),
                 "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.mark.slow
def test_demo_outputs(demo_dir, capsys):
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    assert set(metrics) == {"pgcn", "ecm"}
    for m, s in metrics.items():
        assert len(s["mAP"]) == len(s["tiou"]) == 7
        assert 0.0 <= s["average_mAP"] <= 1.0
        run = demo_dir / m
        for f in ("config.toml", "best.pt", "last.pt", "metrics.jsonl", "train.log",
                  "results_test.json", "eval_test.json"):
            assert (run / f).is_file(), f
        res = json.loads((run / "results_test.json").read_text())
        assert set(res) >= {"version", "results", "external_data"}
    pngs = sorted(p.name for p in demo_dir.glob("*.png"))
    assert "map_vs_tiou.png" in pngs and any(p.startswith("timeline_ecm_") for p in pngs)


@pytest.mark.slow
def test_predict_evaluate_plot_from_checkpoint(demo_dir, tmp_path, capsys):
    ckpt = demo_dir / "ecm" / "best.pt"
    out = tmp_path / "pred" / "results.json"
    assert main(["predict", "--checkpoint", str(ckpt), "--out", str(out), "--quiet"]) == 0
    # deterministic: the same detections as the training run's test results
    a = json.loads(out.read_text())["results"]
    b = json.loads((demo_dir / "ecm" / "results_test.json").read_text())["results"]
    assert a == b
    assert (out.parent / "config.toml").is_file()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--pred", str(tmp_path / "r2.json"),
                 "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    ref = json.loads((demo_dir / "ecm" / "eval_test.json").read_text())
    assert ev["mAP"] == pytest.approx(ref["mAP"])
    gt = next((demo_dir.parent).glob("**/raw/**/annotations.json"), None)
    vid = next(iter(a))
    png = tmp_path / "t.png"
    args = ["plot", "--results", str(out), "--video", vid, "--out", str(png), "--checkpoint",
            str(ckpt)]
    if gt is not None:
        args += ["--gt", str(gt)]
    assert main(args) == 0
    assert png.stat().st_size > 1000
