"""The ``tagraph`` sub-commands: help, errors, demo -> predict / evaluate / plot, and the
WARNING line when predictions are empty or miss most test videos."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tagraph.cli import main
from tagraph.commands import COMMANDS
from tagraph.engine.runner import EmptyPredictionsWarning, write_config
from tagraph.io import save_annotations, save_results
from tests.engine.helpers import (
    TEST,
    detections,
    ground_truth,
    stub_checkpoint,
    stub_config,
    stub_run,
)

REPO = Path(__file__).resolve().parents[2]
NAMES = ["demo", "train", "evaluate", "analyze", "report", "predict", "plot", "data", "info"]


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
    page = (demo_dir / "report.html").read_text(encoding="utf-8")
    for sid in ("summary", "map", "errors", "training", "config", "timelines"):
        assert f'<section id="{sid}">' in page
    assert "pgcn and ecm" in page and "<td>ecm</td>" in page  # both methods in the mAP table


@pytest.mark.slow
def test_predict_evaluate_plot_from_checkpoint(demo_dir, tmp_path, capsys):
    ckpt = demo_dir / "ecm" / "best.pt"
    out = tmp_path / "pred" / "results.json"
    assert main(["predict", "--checkpoint", str(ckpt), "--out", str(out), "--quiet"]) == 0
    # deterministic: the same detections as the training run's test results
    a = json.loads(out.read_text())["results"]
    b = json.loads((demo_dir / "ecm" / "results_test.json").read_text())["results"]
    assert a == b
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]  # nothing else
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


# --------------------------------------------------------------------------- missing predictions
def _warning_lines(err: str) -> list[str]:
    assert "Traceback" not in err and "EmptyPredictionsWarning" not in err
    assert "RuntimeWarning" not in err and "warnings.warn" not in err
    return [line for line in err.splitlines() if line.startswith("WARNING:")]


def _run_quietly(args: list[str]) -> int:
    """``main(args)``, checking that no Python warning of the kind escapes the command."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(args)
    assert not [w for w in caught if issubclass(w.category, EmptyPredictionsWarning)]
    return rc


def test_predict_prints_one_warning_line(tmp_path, monkeypatch, capsys):
    stub_run(monkeypatch, covered=["v0"])
    ckpt = stub_checkpoint(tmp_path / "best.pt")
    assert _run_quietly(["predict", "--checkpoint", str(ckpt), "--out",
                         str(tmp_path / "r.json"), "--quiet", "--device", "cpu"]) == 0
    cap = capsys.readouterr()
    assert "predictions for 1 of 4 ground-truth test videos; 3 have none" in cap.out
    (line,) = _warning_lines(cap.err)
    assert "3 of the 4 test videos with ground truth have no prediction" in line
    assert "v1, v2, v3" in line and "tagraph evaluate" in line
    assert cap.err.rstrip().endswith(line)  # the last thing printed


def test_predict_full_coverage_prints_no_warning(tmp_path, monkeypatch, capsys):
    stub_run(monkeypatch, covered=TEST)
    ckpt = stub_checkpoint(tmp_path / "best.pt")
    assert _run_quietly(["predict", "--checkpoint", str(ckpt), "--out",
                         str(tmp_path / "r.json"), "--quiet", "--device", "cpu"]) == 0
    cap = capsys.readouterr()
    assert "predictions for 4 of 4 ground-truth test videos; 0 have none" in cap.out
    assert _warning_lines(cap.err) == []


def test_train_prints_one_warning_line_on_empty_predictions(tmp_path, monkeypatch, capsys):
    stub_run(monkeypatch, covered=[])
    cfg = write_config(stub_config(), tmp_path / "cfg")
    out = tmp_path / "run"
    assert _run_quietly(["train", "--config", str(cfg), "--out", str(out), "--quiet",
                         "--device", "cpu"]) == 0
    cap = capsys.readouterr()
    (line,) = _warning_lines(cap.err)
    assert line.startswith("WARNING: no predictions at all on the 5 test videos")
    assert "predictions for 0 of 4 ground-truth videos" in cap.out
    assert "mAP (%)" in cap.out and "files written:" in cap.out


def test_train_coverage_counts_predictions_of_any_class(tmp_path, monkeypatch, capsys):
    # Predictions only of "jump", a class without ground truth: the mAP drops them,
    # but the videos are covered (as in eval_test.json), so no warning either.
    from tagraph.engine import runner
    from tagraph.io import Detections

    stub_run(monkeypatch, covered=[])
    monkeypatch.setattr(runner, "predict", lambda cfg, model, graphs, classes, device="cpu",
                        progress=False: Detections.from_records(
                            [(g.video_id, "jump", 0.9, 2.0, 4.0) for g in graphs]))
    cfg = write_config(stub_config(), tmp_path / "cfg")
    out = tmp_path / "run"
    assert _run_quietly(["train", "--config", str(cfg), "--out", str(out), "--quiet",
                         "--device", "cpu"]) == 0
    cap = capsys.readouterr()
    assert "5 predictions on 5 of 5 test videos; predictions for 4 of 4 ground-truth videos" \
        in cap.out
    assert _warning_lines(cap.err) == []
    ev = json.loads((out / "eval_test.json").read_text())
    assert ev["positive_videos_without_predictions"] == 0 and ev["average_mAP"] == 0.0


def test_evaluate_checkpoint_prints_coverage_and_warning(tmp_path, monkeypatch, capsys):
    stub_run(monkeypatch, covered=["v0"])
    ckpt = stub_checkpoint(tmp_path / "best.pt")
    assert _run_quietly(["evaluate", "--checkpoint", str(ckpt), "--device", "cpu"]) == 0
    cap = capsys.readouterr()
    assert "predictions for 1 of 4 ground-truth videos; 3 have none" in cap.out
    assert len(_warning_lines(cap.err)) == 1


def _gt_and_pred(tmp_path: Path, covered: list[str]) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    save_annotations(gt, ground_truth())
    save_results(pred, detections(covered))
    return gt, pred


def test_evaluate_prints_videos_without_predictions(tmp_path, capsys):
    gt, pred = _gt_and_pred(tmp_path, ["v0", "v4", "elsewhere"])
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--subset", "test",
                 "--tiou", "0.5"]) == 0
    out = capsys.readouterr().out
    # t0-t2 and v0-v3 have ground truth; v4 has none; "elsewhere" is not in the file
    assert "predictions for 1 of 7 ground-truth videos; 6 have none" in out
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--subset", "test",
                 "--tiou", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["positive_videos"] == 7 and data["positive_videos_with_predictions"] == 1
    assert data["positive_videos_without_predictions"] == 6 and data["predictions"] == 3
    # one TP ranked after two tied FPs (official tie order), recall 1/7: AP = 1/3 * 1/7
    assert data["mAP"] == [pytest.approx(1 / 21)]


def test_data_synth_writes_a_folder_that_data_check_reads(tmp_path, capsys):
    db = {f"v{i}": {"subset": "Validation" if i < 3 else "Test", "duration": 20.0 + i,
                    "fps": 25.0 if i % 2 else 30.0, "annotations": [
                        {"label": "Jump" if i % 2 else "Throw", "segment": [2.0, 6.0 + i]}]}
          for i in range(5)}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": db}))
    assert main(["data", "synth", str(gt), "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "5 videos, 2 classes, D = 512, stride 16 frames (i3d512)" in out
    sets = out.split("read it with: ", 1)[1].split()
    assert sets[0] == "--set" and "data.feature_stride=16" in sets
    assert main(["data", "check", "--config", "backtal/thumos14", *sets]) == 0
    report = capsys.readouterr().out
    assert "OK: training would accept this data" in report
    del db["v4"]["fps"]
    gt.write_text(json.dumps({"database": db}))
    assert main(["data", "synth", str(gt), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "gt.json: video 'v4': field 'fps'" in err and "Traceback" not in err


def test_train_prints_tagraph_warnings_as_warning_lines(tmp_path, capsys):
    # A ground-truth segment past its video's end is reported by the data check and by the
    # reader: each as one WARNING line, never as a Python warning with its source line.
    db = {f"v{i}": {"subset": "Validation" if i < 6 else "Test", "duration": 20.0,
                    "fps": 30.0, "annotations": [
                        {"label": "Jump" if i % 2 else "Throw", "segment": [2.0, 8.0]},
                        {"label": "Jump" if i % 2 else "Throw",
                         "segment": {6: [21.0, 23.0], 7: [15.0, 21.0]}.get(i, [15.0, 18.0])}]}
          for i in range(8)}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": db}))
    assert main(["data", "synth", str(gt), "--out", str(tmp_path / "d")]) == 0
    out, err = capsys.readouterr()
    sets = out.split("read it with: ", 1)[1].split()
    lines = _warning_lines(err)  # data synth reads the file: the same WARNING line
    assert len(lines) == 1 and "outside [0, duration]" in lines[0]
    assert "Warning:" not in err and "load_annotations(" not in err
    assert main(["train", "--config", "mil/thumos14", *sets, "--set", "train.epochs=1",
                 "--set", "model.hidden_channels=8", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    lines = _warning_lines(err)
    assert len(lines) == len(set(lines)) and "UserWarning" not in err
    # the data check and the reader count the same segments of the test videos: one
    # reaching past the end (clipped), one wholly after it (dropped), in two videos
    assert any("2 test ground-truth segment(s) reach outside [0, duration]; they are clipped "
               "to it (1 lie wholly outside and are dropped)" in line for line in lines)
    assert any("2 ground-truth segment(s) in 2 video(s) reach outside [0, duration] and were "
               "clipped to it (1 dropped" in line for line in lines)
