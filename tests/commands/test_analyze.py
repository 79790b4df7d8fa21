"""``tagraph analyze``: tables, --json, --out (analysis.json and plots), one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagraph.cli import main
from tagraph.evaluation import analyze_detections

REPO = Path(__file__).resolve().parents[2]
GT = REPO / "examples" / "data" / "example_gt.json"
PRED = REPO / "examples" / "data" / "example_results.json"


def test_analyze_tables(capsys):
    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--subset", "test"]) == 0
    out = capsys.readouterr().out
    for text in ("mAP_N", "False-positive profile", "10G", "Double Detection", "Background",
                 "Removing each false-positive type", "coverage", "num_instances", "FN rate"):
        assert text in out


def test_analyze_json_matches_api(capsys):
    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--subset", "TEST",
                 "--tiou", "0.3", "--bins", "thumos14", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    res = analyze_detections(GT, PRED, 0.3, subset="test", bins="thumos14")
    assert data == json.loads(json.dumps(res.to_dict()))
    assert data["tiou"] == 0.3 and data["bins"] == "thumos14"
    assert len(data["fp_profile"]["top_kG"]) == 10


def test_analyze_out_writes_json_and_plots(tmp_path, capsys):
    out = tmp_path / "new" / "dir"
    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--out", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert json.loads((out / "analysis.json").read_text()) == printed
    assert "analysis.json" in captured.err  # 'wrote ...' goes to stderr with --json
    pytest.importorskip("matplotlib")
    for name in ("fp_profile.png", "sensitivity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.json", "fp_profile.png", "sensitivity.png"]  # no temporary files left


def _err(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_analyze_bad_inputs(tmp_path, capsys):
    bad = tmp_path / "pred.json"
    bad.write_text('{"results": {"video_000": [')
    assert main(["analyze", "--gt", str(GT), "--pred", str(bad)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith("tagraph analyze: error:")
    assert "invalid or truncated JSON" in err[0]

    assert main(["analyze", "--gt", str(tmp_path / "missing.json"), "--pred", str(PRED)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "missing.json" in err[0]

    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--tiou", "0"]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "tiou" in err[0]

    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--subset", "training"]) == 2
    assert "no video in subset 'training'" in _err(capsys)[0]

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--out", str(blocker),
                 "--json"]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith("tagraph analyze: error:")


def test_analyze_help_and_usage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze", "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("usage: tagraph analyze")
    with pytest.raises(SystemExit) as e:
        main(["analyze", "--gt", str(GT)])
    assert e.value.code == 2


def test_auto_bins_follow_instance_lengths(tmp_path, capsys):
    from tagraph.commands.analyze import auto_bins

    def gt(length):
        db = {f"v{i}": {"subset": "test", "duration": 500.0,
                        "annotations": [{"label": "a", "segment": [10.0, 10.0 + length]}]}
              for i in range(3)}
        path = tmp_path / f"gt{length}.json"
        path.write_text(json.dumps({"database": db}))
        return str(path)

    assert auto_bins(gt(4.0), "test") == "thumos14"  # THUMOS-like: all in ActivityNet's XS
    assert auto_bins(gt(90.0), None) == "activitynet"
    assert main(["analyze", "--gt", str(GT), "--pred", str(PRED), "--subset", "test",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bins"] == auto_bins(str(GT), "test")
