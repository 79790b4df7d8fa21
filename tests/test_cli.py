import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tagraph.cli import main

REPO = Path(__file__).resolve().parents[1]
GT = REPO / "examples" / "data" / "example_gt.json"
PRED = REPO / "examples" / "data" / "example_results.json"


def test_evaluate_table(capsys):
    assert main(["evaluate", "--gt", str(GT), "--pred", str(PRED), "--subset", "test",
                 "--tiou", "0.3", "0.5", "0.7"]) == 0
    out = capsys.readouterr().out
    assert "mAP (%)" in out and "0.30" in out and "0.70" in out and "avg" in out


def test_evaluate_json_matches_api(capsys):
    from tagraph.evaluation import detection_map

    assert main(["evaluate", "--gt", str(GT), "--pred", str(PRED), "--subset", "TEST",
                 "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one JSON object on stdout
    assert set(data) == {"tiou", "mAP", "average_mAP", "per_class", "positive_videos",
                         "positive_videos_with_predictions",
                         "positive_videos_without_predictions", "predictions"}
    res = detection_map(GT, PRED, subset="test")
    assert data == {**res.to_dict(), **res.coverage()}
    assert len(data["tiou"]) == 10


def test_evaluate_preset_and_per_class(capsys):
    assert main(["evaluate", "--gt", str(GT), "--pred", str(PRED), "--preset", "thumos14",
                 "--per-class"]) == 0
    out = capsys.readouterr().out
    assert "avg0.3:0.7" in out and "LongJump" in out


def _bad(tmp_path, capsys, gt_text=None, pred_text=None, extra=()):
    gt, pred = GT, PRED
    if gt_text is not None:
        gt = tmp_path / "gt.json"
        gt.write_text(gt_text)
    if pred_text is not None:
        pred = tmp_path / "pred.json"
        pred.write_text(pred_text)
    rc = main(["evaluate", "--gt", str(gt), "--pred", str(pred), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_evaluate_bad_inputs(tmp_path, capsys):
    rc, err = _bad(tmp_path, capsys, pred_text='{"results": {"video_000": [')
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("tagraph evaluate: error:") and "invalid or truncated JSON" in err[0]

    res = json.loads(PRED.read_text())
    first = next(iter(res["results"]))
    res["results"][first][0]["label"] = "Swimming"
    rc, err = _bad(tmp_path, capsys, pred_text=json.dumps(res))
    assert rc == 2 and len(err) == 1 and "'Swimming' is not in the ground-truth taxonomy" in err[0]
    assert f"video '{first}'" in err[0] and "pred.json" in err[0]

    res["results"][first][0].update(label="LongJump", segment=[5.0, 1.0])
    rc, err = _bad(tmp_path, capsys, pred_text=json.dumps(res))
    assert rc == 2 and "start 5.0 > end 1.0" in err[0]

    rc, err = _bad(tmp_path, capsys, gt_text='{"version": 1}')
    assert rc == 2 and "missing top-level field 'database'" in err[0]

    rc, err = _bad(tmp_path, capsys, extra=["--subset", "training"])
    assert rc == 2 and "no video in subset 'training'" in err[0]

    rc = main(["evaluate", "--gt", str(tmp_path / "missing.json"), "--pred", str(PRED)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "missing.json" in err[0]


def test_evaluate_warning_goes_to_stderr(tmp_path, capsys):
    res = json.loads(PRED.read_text())
    del res["external_data"]
    rc, err = _bad(tmp_path, capsys, pred_text=json.dumps(res))
    assert rc == 0 and err and err[0].startswith("WARNING: ")


def test_evaluate_ambiguous(tmp_path, capsys):
    amb = tmp_path / "amb.txt"
    amb.write_text("video_000 0 1000\n")
    assert main(["evaluate", "--gt", str(GT), "--pred", str(PRED), "--ambiguous", str(amb),
                 "--json"]) == 0
    with_amb = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--gt", str(GT), "--pred", str(PRED), "--json"]) == 0
    without = json.loads(capsys.readouterr().out)
    assert with_amb != without


def test_usage_error_exit_code(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--gt", str(GT)])
    assert e.value.code == 2


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "evaluate" in capsys.readouterr().out


def test_python_dash_m():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "tagraph", "evaluate", "--gt", str(GT), "--pred", str(PRED),
         "--json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "average_mAP" in json.loads(proc.stdout)
    proc = subprocess.run(
        [sys.executable, "-m", "tagraph", "evaluate", "--gt", "nope.json", "--pred",
         str(PRED)], capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
