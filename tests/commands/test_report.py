"""``tagraph report``: RUN_DIR and --gt/--pred modes, defaults, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tagraph.cli import main
from tagraph.report import NO_PLOTS
from tests.test_report import _check

REPO = Path(__file__).resolve().parents[2]
GT = REPO / "examples" / "data" / "example_gt.json"
PRED = REPO / "examples" / "data" / "example_results.json"


def _err(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def tables_only(monkeypatch):
    """No matplotlib: the commands' logic without the plotting time (the pages' plots are
    tested in tests/test_report.py)."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_report_gt_pred(tmp_path, capsys, tables_only):
    out = tmp_path / "r" / "page.html"
    assert main(["report", "--gt", str(GT), "--pred", str(PRED), "--subset", "test",
                 "--preset", "thumos14", "--bins", "thumos14", "--videos", "1",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote {out}"
    assert captured.err.strip() == f"tagraph report: note: {NO_PLOTS}"
    p = _check(out.read_text(encoding="utf-8"))
    text = p.all_text
    assert "tagraph report: example_results.json" in text
    assert "0.10" in text and "0.70" in text  # the thumos14 thresholds
    assert "example_gt.json" in text and "subset test" in text


def test_report_default_out(tmp_path, monkeypatch, capsys, tables_only):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--gt", str(GT), "--pred", str(PRED), "--tiou", "0.5",
                 "--videos", "0"]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "0.50" in _check(page).all_text


def test_report_run_dir(tmp_path, capsys, tables_only):
    from tagraph.engine import runner
    from tests.engine import _tiny_run

    run = tmp_path / "run"
    runner.train(_tiny_run.config(str(tmp_path / "data"), 1, 4), run, device="cpu",
                 progress=False)
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote {run / 'report.html'}"
    assert NO_PLOTS in captured.err
    text = _check((run / "report.html").read_text(encoding="utf-8")).all_text
    ev = json.loads((run / "eval_test.json").read_text())
    assert f"{100 * ev['average_mAP']:.2f} %" in text
    assert "tiny_mil on synthetic" in text and "metrics.jsonl" in text

    # --gt instead of the config's dataset: the same numbers on the same test videos
    gt = next((tmp_path / "data").glob("raw/**/annotations.json"))
    out = tmp_path / "with_gt.html"
    assert main(["report", str(run), "--gt", str(gt), "--out", str(out)]) == 0
    assert f"{100 * ev['average_mAP']:.2f} %" in _check(out.read_text()).all_text
    capsys.readouterr()

    # a dataset that is not there: the error says how to do without it
    assert main(["report", str(run), "--set", "data.dataset=thumos14", "--set",
                 f"data.root={tmp_path / 'gone'}", "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tagraph report: error:") and "--gt GT.json" in err
    assert "Traceback" not in err


def test_report_usage_errors(tmp_path, capsys):
    assert main(["report"]) == 2
    assert "give a run folder" in _err(capsys)[0]
    assert main(["report", "--gt", str(GT)]) == 2
    assert "both --gt and --pred" in _err(capsys)[0]
    assert main(["report", str(tmp_path), "--pred", str(PRED)]) == 2
    assert "--pred is for reports without RUN_DIR" in _err(capsys)[0]
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "config.toml" in err[0] and "not a finished" in err[0]
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": {"video_000": [')
    assert main(["report", "--gt", str(GT), "--pred", str(bad)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "invalid or truncated JSON" in err[0]
    assert main(["report", "--gt", str(GT), "--pred", str(PRED), "--out", str(tmp_path)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith("tagraph report: error:")


def test_report_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tagraph report")
    assert "examples/data/example_gt.json" in out and "tagraph_demo/pgcn" in out
