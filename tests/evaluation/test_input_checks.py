"""``detection_map`` warns (``EvaluationInputWarning``) where valid inputs probably give a wrong
number (issue #14 item 6, issue #15), names the ground-truth file when the subset is absent, and
keeps its numbers."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from tagraph.evaluation import EvaluationInputWarning, detection_map
from tagraph.io import Detections, load_annotations

VIDEOS = [f"vid{i}" for i in range(6)]


def _gt(prefix: str = "", subsets=("test",) * 6) -> dict:
    return {"database": {
        prefix + v: {"subset": s, "duration": 100.0, "annotations": [
            {"label": "A" if i % 2 else "B", "segment": [10.0 + i, 20.0 + i]}]}
        for i, (v, s) in enumerate(zip(VIDEOS, subsets))}}


def _pred(videos=VIDEOS, prefix: str = "", scale: float = 1.0) -> Detections:
    rows = []
    for i, v in enumerate(videos):
        j = VIDEOS.index(v) if v in VIDEOS else i
        lab = "A" if j % 2 else "B"
        rows.append((prefix + v, lab, 0.9, (10.0 + j) * scale, (20.0 + j) * scale))
        rows.append((prefix + v, "A", 0.2, 50.0 * scale, 60.0 * scale))
    return Detections.from_records(rows)


def _run(gt, pred, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = detection_map(gt, pred, [0.5], **kw)
    msgs = [str(w.message) for w in rec if issubclass(w.category, EvaluationInputWarning)]
    return res, msgs


def test_warning_class_is_exported():
    assert issubclass(EvaluationInputWarning, UserWarning)


def test_clean_inputs_do_not_warn():
    res, msgs = _run(_gt(), _pred(), subset="test")
    assert msgs == [] and res.mAP[0] == 1.0
    assert res.num_prediction_videos == res.num_prediction_videos_matched == 6


def test_videos_absent_from_ground_truth_warn_and_count_as_false_positives():
    pred = Detections.concat([_pred(), _pred(["x1", "x2"])])
    res, msgs = _run(_gt(), pred, subset="test")
    (msg,) = msgs
    assert msg == ("<Detections>: 2 of 8 prediction videos (4 predictions) are not in the "
                   "ground truth <dict>, e.g. 'x1', 'x2'; they count as false positives")
    # the official behaviour: same numbers as with the false positives in a known video
    assert res.num_predictions == len(pred) and res.num_prediction_videos_matched == 6
    ref, _ = _run(_gt(), _pred(), subset="test")
    assert res.mAP[0] <= ref.mAP[0]


@pytest.mark.parametrize("gt_prefix,pred_prefix,hint", [
    ("", "v_", "the predictions use a 'v_' prefix that the ground truth does not"),
    ("v_", "", "the ground truth uses a 'v_' prefix that the predictions do not"),
])
def test_prefix_hint(tmp_path, gt_prefix, pred_prefix, hint):
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(_gt(gt_prefix)))
    pred_path.write_text(json.dumps(_pred(prefix=pred_prefix).to_dict()))
    res, msgs = _run(gt_path, pred_path, subset="test")
    assert res.mAP[0] == 0.0 and res.num_prediction_videos_matched == 0
    absent = [m for m in msgs if "are not in the ground truth" in m]
    assert len(absent) == 1
    assert absent[0].startswith(f"{pred_path}: 6 of 6 prediction videos (12 predictions) are "
                                f"not in the ground truth {gt_path}, e.g. '{pred_prefix}vid0'")
    assert "none of them matches: the mAP is 0" in absent[0]
    assert f"hint: {hint} (6 would match" in absent[0]


def test_segments_in_frames_warn():
    res, msgs = _run(_gt(), _pred(scale=30.0), subset="test")
    (msg,) = [m for m in msgs if "frames instead of seconds" in m]
    assert msg.startswith("<Detections>: 100% of the predictions (12 of 12) end more than 1 s "
                          "after their video's duration, e.g. video 'vid0' segment [300, 600] "
                          "vs duration 100 s")
    # a few overshooting predictions (<= 10 %) are normal: no warning
    pred = _pred()
    pred.segment[0] = [95.0, 103.0]
    assert _run(_gt(), pred, subset="test")[1] == []


def test_several_subsets_without_subset_warn():
    gt = _gt(subsets=("Test", "Test", "Test", "Validation", "Validation", "Test"))
    res, msgs = _run(gt, _pred())
    (msg,) = msgs
    assert msg == ("<dict>: the ground truth has several subsets ('Test' (4 videos), "
                   "'Validation' (2 videos)) and no subset was selected: all are evaluated "
                   "together (pass subset=... / --subset)")
    assert res.mAP[0] == 1.0  # behaviour kept: all videos evaluated
    assert _run(gt, _pred(["vid0", "vid1", "vid2", "vid5"]), subset="test")[1] == []


def test_predictions_on_another_subset_warn():
    gt = _gt(subsets=("test",) * 4 + ("validation",) * 2)
    _, msgs = _run(gt, _pred(), subset="test")
    (msg,) = msgs
    assert msg == ("<Detections>: 2 of 6 prediction videos (4 predictions) belong to another "
                   "subset than 'test', e.g. 'vid4' ('validation'); they count as false "
                   "positives")


def test_no_predictions_warn():
    res, msgs = _run(_gt(), Detections.empty(), subset="test")
    assert msgs == ["<Detections>: no predictions at all: the mAP is 0 (6 videos with ground "
                    "truth in subset 'test' of <dict>)"]
    assert res.mAP[0] == 0.0


def test_videos_without_predictions_warn():
    res, msgs = _run(_gt(), _pred(["vid0", "vid2"]), subset="test")
    assert msgs == ["<Detections>: 4 of the 6 videos with ground truth in subset 'test' of "
                    "<dict> have no prediction, e.g. 'vid1', 'vid3', 'vid4', ...; their "
                    "instances count as misses"]
    assert res.num_positive_videos_without_predictions == 4


def test_missing_subset_names_the_file(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(_gt()))
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: no video in subset 'validation' (subsets: 'test' (6 videos))")):
        detection_map(path, _pred(), [0.5], subset="validation")


def test_label_typo_changes_the_classes_and_warns(tmp_path):
    gt = _gt()
    gt["database"]["vid5"]["annotations"][0]["label"] = "a "  # typo of "A"
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = detection_map(path, _pred(), [0.5], subset="test")
    assert res.labels == ["B", "A", "a "]  # the typo is a class of its own ...
    assert any("label 'a ' (1 instance) looks like a typo of 'A' (2 instances)"
               in str(w.message) for w in rec)  # ... and that is said


def _thumos() -> Path | None:
    repo = Path(__file__).resolve().parents[2]
    for base in (repo / ".." / "shared" / "data", Path("/work/shared/data")):
        if (base / "thumos14" / "thumos14.json").exists():
            return base / "thumos14" / "thumos14.json"
    return None


def test_thumos14_gt_as_predictions_gives_no_input_warning():
    path = _thumos()
    if path is None:
        pytest.skip("THUMOS14 annotations not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gt = load_annotations(path, subset="test")
    det = Detections.from_records(
        (v, lab, 1.0, s, e) for v, a in gt.items()
        for lab, (s, e) in zip(a.labels, a.segments.tolist()))
    res, msgs = _run(path, det, subset="test")
    assert msgs == [] and len(res.labels) == 20
    np.testing.assert_array_equal(res.mAP, [1.0])
    # frames instead of seconds (30 fps) is caught on the real file
    frames = Detections(det.video_id, det.label, det.score, det.segment * 30.0)
    assert any("frames instead of seconds" in m for m in _run(path, frames, subset="test")[1])
