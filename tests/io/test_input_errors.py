"""Inputs that used to give silent wrong results (issue #15): duplicate video ids, booleans as
scores, negative segments, NaN / inverted values written by ``save_results``, label typos in the
ground truth. Each error names the file, the video and the field."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from tagraph.io import (
    Detections,
    load_annotations,
    load_results,
    save_results,
)
from tagraph.io.activitynet import EvaluationInputWarning

GT_TEXT = """{"database": {
  "v1": {"subset": "test", "duration": 20.0, "annotations": [
      {"label": "Jump", "segment": [1.0, 3.5]}]},
  "v2": {"subset": "test", "duration": 30.0, "annotations": [
      {"label": "Run", "segment": [4.0, 9.0]}]}%s
}}"""

RES_TEXT = """{"version": "VERSION 1.3", "external_data": {}, "results": {
  "v1": [{"label": "Jump", "score": 0.9, "segment": [1.0, 3.0]}],
  "v2": [{"label": "Run", "score": 0.5, "segment": [4.0, 9.0]},
         {"label": "Run", "score": %s, "segment": %s}]%s
}}"""


def _res(score="0.4", segment="[5.0, 6.0]", extra=""):
    return RES_TEXT % (score, segment, extra)


def _write(tmp_path: Path, text: str, name: str = "f.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _spaced(text: str) -> str:
    """The same JSON with spaces before the colons (another key layout)."""
    return re.sub(r'"\s*:', '" :', text)


# --------------------------------------------------------------------------- duplicate ids
@pytest.mark.parametrize("layout", [str, _spaced])
def test_duplicate_video_id_in_ground_truth(tmp_path, layout):
    extra = ',\n  "v1": {"subset": "test", "annotations": []}'
    path = _write(tmp_path, layout(GT_TEXT % extra))
    with pytest.raises(ValueError) as e:
        load_annotations(path)
    msg = str(e.value)
    assert str(path) in msg and "video 'v1'" in msg and "duplicate video id in 'database'" in msg
    # the file without the duplicate reads
    assert len(load_annotations(_write(tmp_path, layout(GT_TEXT % ""), "ok.json"))) == 2


@pytest.mark.parametrize("layout", [str, _spaced])
def test_duplicate_video_id_in_results(tmp_path, layout):
    extra = ',\n  "v1": [{"label": "Jump", "score": 0.1, "segment": [9.0, 10.0]}]'
    path = _write(tmp_path, layout(_res(extra=extra)))
    with pytest.raises(ValueError) as e:
        load_results(path)
    msg = str(e.value)
    assert str(path) in msg and "video 'v1'" in msg and "duplicate video id in 'results'" in msg
    assert len(load_results(_write(tmp_path, layout(_res()), "ok.json"))) == 3


def test_duplicate_field_in_one_result(tmp_path):
    path = _write(tmp_path, _res(score='0.4, "score": 0.8'))
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: video 'v2' results[1]: field 'score' appears 2 times")):
        load_results(path)


def test_key_patterns_inside_strings_are_not_duplicates(tmp_path):
    # '":' inside strings makes the quick key count over-estimate: the exact parse says no
    res = json.loads(_res())
    res["external_data"] = {"details": 'a "quoted": text', "used": False}
    path = _write(tmp_path, json.dumps(res))
    assert len(load_results(path)) == 3


# --------------------------------------------------------------------------- booleans
@pytest.mark.parametrize("score", ["true", "false"])
def test_boolean_score_is_refused(tmp_path, score):
    # the other scores are numbers: numpy used to read true as 1.0 without a word
    path = _write(tmp_path, _res(score=score))
    with pytest.raises(ValueError) as e:
        load_results(path)
    assert str(e.value) == (f"{path}: video 'v2' results[1].score: expected a number, "
                            f"a boolean is not a number {score.title()}")


def test_boolean_in_segment_is_refused(tmp_path):
    path = _write(tmp_path, _res(segment="[true, 6.0]"))
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: video 'v2' results[1].segment: start and end must be numbers")):
        load_results(path)


# --------------------------------------------------------------------------- negative times
def test_negative_segment_in_results(tmp_path):
    path = _write(tmp_path, _res(segment="[-10, -5]"))
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: video 'v2' results[1].segment: [-10.0, -5.0] lies entirely before 0 s")):
        load_results(path)
    # a start just below 0 (regression overshoot) stays valid, as in the official evaluator
    assert load_results(_write(tmp_path, _res(segment="[-0.5, 2.0]"), "ok.json")).segment[2, 0] \
        == -0.5


def test_negative_segment_in_ground_truth(tmp_path):
    path = _write(tmp_path, GT_TEXT.replace("[4.0, 9.0]", "[-10, -5]") % "")
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: video 'v2'.annotations[0].segment: [-10.0, -5.0] lies entirely before")):
        load_annotations(path)


# --------------------------------------------------------------------------- NaN / inf on read
@pytest.mark.parametrize("score,segment,field", [
    ("NaN", "[5.0, 6.0]", "score"),
    ("Infinity", "[5.0, 6.0]", "score"),
    ("0.4", "[NaN, 6.0]", "segment"),
    ("0.4", "[5.0, Infinity]", "segment"),
])
def test_non_finite_values_are_refused(tmp_path, score, segment, field):
    path = _write(tmp_path, _res(score=score, segment=segment))
    with pytest.raises(ValueError, match=re.escape(f"{path}: video 'v2' results[1].{field}")):
        load_results(path)


# --------------------------------------------------------------------------- save_results
@pytest.mark.parametrize("score,segment,match", [
    (float("nan"), [1.0, 2.0], "score: must be finite, got nan"),
    (float("inf"), [1.0, 2.0], "score: must be finite, got inf"),
    (0.5, [float("nan"), 2.0], "segment: start and end must be finite"),
    (0.5, [3.0, 2.0], "segment: start 3.0 > end 2.0 (inverted segment)"),
])
def test_save_results_refuses_before_writing(tmp_path, score, segment, match):
    det = Detections.from_records([("a", "x", 0.9, 0.0, 1.0), ("b", "x", score, *segment)])
    path = tmp_path / "r.json"
    with pytest.raises(ValueError) as e:
        save_results(path, det)
    msg = str(e.value)
    assert msg.startswith(f"{path}: not written: video 'b' row 1: ") and match in msg
    assert not path.exists() and list(tmp_path.iterdir()) == []
    path.write_text("old")  # an existing file is left as it was
    with pytest.raises(ValueError):
        save_results(path, det)
    assert path.read_text() == "old"


# --------------------------------------------------------------------------- label typos
@pytest.mark.parametrize("typo", ["Diving ", "diving", "Divng"])
def test_label_typo_warns(tmp_path, typo):
    db = {f"v{i}": {"subset": "test", "annotations": [{"label": "Diving",
                                                     "segment": [1.0, 2.0]}] * 3}
          for i in range(3)}
    db["v9"] = {"subset": "test", "annotations": [{"label": typo, "segment": [1.0, 2.0]}]}
    path = _write(tmp_path, json.dumps({"database": db}))
    with pytest.warns(EvaluationInputWarning) as rec:
        load_annotations(path)
    (w,) = [r for r in rec if "typo" in str(r.message)]
    assert str(w.message) == (
        f"{path}: video 'v9': label {typo!r} (1 instance) looks like a typo of 'Diving' "
        "(9 instances); it is evaluated as a class of its own")


def test_distinct_rare_classes_do_not_warn(tmp_path):
    db = {"v1": {"subset": "test", "annotations": [
        {"label": "CliffDiving", "segment": [1.0, 2.0]},
        {"label": "Diving", "segment": [1.0, 2.0]},
        {"label": "Shotput", "segment": [1.0, 2.0]},
        {"label": "Shotput", "segment": [3.0, 4.0]},
        {"label": "Shotput", "segment": [5.0, 6.0]},
        {"label": "Billiards", "segment": [1.0, 2.0]},
        {"label": "Playing sitar", "segment": [1.0, 2.0]},
        *[{"label": "Playing guitar", "segment": [1.0, 2.0]}] * 3,
        {"label": "action_03", "segment": [1.0, 2.0]},
        *[{"label": "action_04", "segment": [1.0, 2.0]}] * 3,
    ]}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_annotations(_write(tmp_path, json.dumps({"database": db})))


def _thumos_json() -> Path | None:
    repo = Path(__file__).resolve().parents[2]
    for base in (repo / ".." / "shared" / "data", Path("/work/shared/data")):
        if (base / "thumos14" / "thumos14.json").exists():
            return base / "thumos14" / "thumos14.json"
    return None


def test_real_thumos14_reads_without_new_errors_or_typo_warnings():
    path = _thumos_json()
    if path is None:
        pytest.skip("THUMOS14 annotations not available")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        gt = load_annotations(path)
    assert len(gt) == 412
    assert [str(w.message) for w in rec if "typo" in str(w.message)] == []
    counts = {}
    for a in gt.values():
        for label in a.labels:
            counts[label] = counts.get(label, 0) + 1
    assert len(counts) == 20 and min(counts.values()) > 2
    assert np.isfinite(np.concatenate([a.segments for a in gt.values()])).all()
