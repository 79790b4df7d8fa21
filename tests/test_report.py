"""tagraph.report: a well-formed, self-contained page with every section, with or without
matplotlib, from results files and from a (tiny) training run."""

from __future__ import annotations

import base64
import json
import os
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tagraph.evaluation import THUMOS14_TIOU, detection_map
from tagraph.io import Detections, VideoAnnotation
from tagraph.report import (
    NO_PLOTS,
    SECTIONS,
    _pick_videos,
    _video_scores,
    build_report,
    run_inputs,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
GT = REPO / "examples" / "data" / "example_gt.json"
PRED = REPO / "examples" / "data" / "example_results.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Page(HTMLParser):
    """Checks that every element is closed in order and collects ids, images, text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.sections: list[str] = []
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self.errors: list[str] = []
        self.feed(text)
        self.close()
        assert not self.errors, self.errors[:5]
        assert self.stack == [], f"unclosed elements: {self.stack}"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
            if tag == "section":
                self.sections.append(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _check(page: str) -> Page:
    assert page.startswith("<!DOCTYPE html>")
    p = Page(page)
    assert p.sections == list(SECTIONS)  # every section, in order
    assert len(p.ids) == len(set(p.ids))
    assert "script" not in p.tags  # no JavaScript
    assert "http://" not in page and "https://" not in page  # nothing fetched from a network
    for src in p.images:  # inline PNGs only
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    return p


@pytest.fixture
def no_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` -> ImportError


def test_report_from_files(tmp_path):
    pytest.importorskip("matplotlib")
    page = build_report(GT, PRED, subset="test", tiou=THUMOS14_TIOU, bins="thumos14",
                        num_timelines=3, name="example")
    p = _check(page)
    text = p.all_text
    # mAP table = detection_map's
    res = detection_map(GT, PRED, THUMOS14_TIOU, subset="test")
    assert f"{100 * res.average_mAP:.2f} %" in text
    for m in res.mAP:
        assert f"{100 * m:.2f}" in text
    for words in ("False-positive profile", "Removing each error type", "Wrong label",
                  "mAP_N", "false negatives", "coverage", "num_instances", "best:", "median:",
                  "worst:", "No proposals given", "not a run folder"):
        assert words in text, words
    # plots: mAP vs tIoU, per-class AP, FP profile, sensitivity, 3 timelines
    assert len(p.images) == 7
    assert NO_PLOTS not in text


def test_report_without_matplotlib(no_matplotlib):
    page = build_report(GT, PRED, subset="test", tiou=[0.3, 0.5, 0.7])
    p = _check(page)
    assert p.images == []
    assert NO_PLOTS in p.all_text  # said once at the top ...
    assert p.all_text.count("plots skipped") >= 5  # ... and where each plot would be
    assert "False-positive profile" in p.all_text and "video_0" in p.all_text


def test_report_escapes_text(no_matplotlib):
    evil = "<script>alert('x')</script>"
    gt = {evil: VideoAnnotation(evil, "test", 20.0, 25.0, [[1.0, 5.0]], ["<b>Jump & Run"])}
    det = Detections([evil, evil], ["<b>Jump & Run", "<b>Jump & Run"], [0.9, 0.2],
                     [[1.0, 5.0], [10.0, 12.0]])
    page = build_report(gt, det, tiou=[0.5], title="a <title> & more",
                        config_text='name = "</pre><script>"', sources=[("<x>", "&y")])
    p = _check(page)  # no <script> element came through
    assert "&lt;b&gt;Jump &amp; Run" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<b>" not in page and "</pre><script>" not in page
    assert "a <title> & more" in p.all_text


def test_write_report_atomic(tmp_path, no_matplotlib):
    out = tmp_path / "new" / "report.html"
    path = write_report(out, GT, PRED, subset="test", tiou=[0.5])
    assert path == out
    _check(out.read_text(encoding="utf-8"))
    assert os.listdir(out.parent) == ["report.html"]  # no temporary file left


def test_report_recall_of_proposals(no_matplotlib):
    page = build_report(GT, PRED, subset="test", tiou=[0.5, 0.7], proposals=PRED,
                        num_proposals=(1, 5, 10))
    text = _check(page).all_text
    assert "proposals per video (AN)" in text and "AR (%)" in text
    bad = build_report(GT, PRED, subset="test", tiou=[0.5], proposals={"results": 3})
    assert "Proposals could not be evaluated" in _check(bad).all_text


def test_report_compare_methods(no_matplotlib):
    page = build_report(GT, PRED, subset="test", tiou=[0.5], name="a",
                        compare={"b": Detections.from_records([])})
    _check(page)
    rows = [r for r in page.split("<tr>") if r.startswith("<td>b</td>")]
    assert len(rows) == 1 and ">0.00<" in rows[0]  # no predictions: mAP 0


def test_video_scores_and_picks():
    gt = {"a": VideoAnnotation("a", "test", 20.0, 25.0, [[1.0, 5.0]], ["X"]),
          "b": VideoAnnotation("b", "test", 20.0, 25.0, [[1.0, 5.0], [8.0, 9.0]], ["X", "Y"]),
          "c": VideoAnnotation("c", "test", 20.0, 25.0, [[2.0, 3.0]], ["Y"]),
          "e": VideoAnnotation("e", "test", 20.0, 25.0)}  # no instance: not ranked
    det = Detections(["a", "b", "b", "a"], ["X", "X", "Z", "Y"], [0.9, 0.8, 0.95, 0.1],
                     [[1.0, 5.0], [1.0, 4.0], [8.0, 9.0], [0.0, 1.0]])
    thr = np.array([0.5, 0.9])
    scores = _video_scores(gt, det, thr)
    assert set(scores) == {"a", "b", "c"}
    assert scores["a"] == pytest.approx(1.0)  # the Y prediction in 'a' has no Y ground truth
    assert scores["c"] == 0.0  # no prediction
    ref = detection_map({"b": gt["b"]}, det[(det.video_id == "b") & (det.label != "Z")], thr)
    assert scores["b"] == pytest.approx(ref.average_mAP)
    # the same as one evaluation per video, on the example files
    from tagraph.io import load_annotations, load_results

    gt, det = load_annotations(GT), load_results(PRED)
    scores_ex = _video_scores(gt, det, THUMOS14_TIOU)
    assert len(scores_ex) == len(gt)
    for v, ann in gt.items():
        d = det[(det.video_id == v) & np.isin(det.label, ann.labels)]
        ref = detection_map({v: ann}, d, THUMOS14_TIOU)
        assert scores_ex[v] == pytest.approx(ref.average_mAP, abs=1e-12), v
    assert _pick_videos(scores, 3) == [("best", "a", scores["a"]),
                                       ("median", "b", scores["b"]),
                                       ("worst", "c", 0.0)]
    assert [v for _, v, _ in _pick_videos(scores, 1)] == ["a"]
    assert [v for _, v, _ in _pick_videos(scores, 2)] == ["a", "c"]
    assert len(_pick_videos({"a": 1.0}, 3)) == 1
    many = {f"v{i:02d}": i / 10 for i in range(11)}
    roles = [r for r, _, _ in _pick_videos(many, 5)]
    assert roles[0] == "best" and roles[-1] == "worst" and "median" in roles
    assert len(roles) == 5


# --------------------------------------------------------------------------- a training run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A 2-epoch run of the tiny linear MIL model on a tiny synthetic dataset (~1 s)."""
    from tagraph.engine import runner
    from tests.engine import _tiny_run

    root = tmp_path_factory.mktemp("tiny_data")
    out = tmp_path_factory.mktemp("tiny_run")
    runner.train(_tiny_run.config(str(root), 2, 4), out, device="cpu", progress=False)
    return out


def test_run_inputs(tiny_run):
    kw = run_inputs(tiny_run)
    assert kw["subset"] == "test" and kw["tiou"] == [0.1, 0.5]
    assert kw["bins"] == "thumos14" and kw["name"] == "tiny_mil"
    assert [r["epoch"] for r in kw["history"]] == [1, 2]
    assert kw["config_text"] == (tiny_run / "config.toml").read_text()
    assert kw["run_summary"]["average_mAP"] == json.loads(
        (tiny_run / "eval_test.json").read_text())["average_mAP"]
    # the ground truth: the run's test videos marked as the evaluated subset
    test = {v for v, a in kw["ground_truth"].items() if a.subset == "test"}
    assert len(test) == 6
    with pytest.raises(FileNotFoundError, match="results_test.json"):
        run_inputs(tiny_run / "nothing")


def test_report_of_a_run(tiny_run):
    mpl = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        mpl = False
    kw = run_inputs(tiny_run)
    page = build_report(**kw, num_timelines=1)
    p = _check(page)
    text = p.all_text
    ev = json.loads((tiny_run / "eval_test.json").read_text())
    assert f"{100 * ev['average_mAP']:.2f} %" in text  # the same mAP as 'tagraph train'
    assert "eval_test.json has average mAP" not in text  # no mismatch note
    assert "tiny_mil on synthetic" in text
    assert 'method = "tiny_mil"' in text  # the config, as text
    assert "metrics.jsonl, one row per epoch" in text and "best epoch (best.pt)" in text
    assert "val_mAP" in text
    if mpl:
        # mAP vs tIoU, per class, FP profile, sensitivity, training curves, one timeline
        assert len(p.images) == 6
