import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagraph.evaluation import (
    ACTIVITYNET_TIOU,
    THUMOS14_TIOU,
    detection_map,
    filter_ambiguous,
)
from tagraph.io import Detections, VideoAnnotation, load_annotations

from .reference_impl import reference_detection_map

THUMOS_JSON = "thumos14/thumos14.json"


def shared_data(rel: str) -> Path | None:
    repo = Path(__file__).resolve().parents[2]
    for base in (repo / ".." / "shared" / "data", Path("/work/shared/data")):
        if (base / rel).exists():
            return base / rel
    return None


def build(gt_rows, pred_rows):
    """gt_rows: (video, subset, label, s, e) -> GT dict; pred_rows -> Detections."""
    db = {}
    for vid, subset, label, s, e in gt_rows:
        entry = db.setdefault(vid, {"subset": subset, "duration": 100.0, "annotations": []})
        if label is not None:
            entry["annotations"].append({"label": label, "segment": [s, e]})
    return {"database": db}, Detections.from_records(pred_rows)


half = st.integers(0, 30).map(lambda x: x / 2)


@st.composite
def problems(draw):
    n_videos = draw(st.integers(1, 5))
    n_classes = draw(st.integers(1, 4))
    gt_rows = []
    for v in range(n_videos):
        subset = draw(st.sampled_from(["Test", "Validation"]))
        anns = draw(
            st.lists(
                st.tuples(st.integers(0, n_classes - 1), half, st.integers(0, 10)),
                max_size=7,
            )
        )
        gt_rows.append((f"v{v}", subset, None, 0, 0))  # video entry even without instances
        for c, s, length in anns:
            gt_rows.append((f"v{v}", subset, f"c{c}", s, s + length / 2))
        if anns and draw(st.booleans()):  # duplicate ground truth instance
            gt_rows.append(gt_rows[-1])
    preds = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_videos + 1),  # two unknown videos
                st.integers(0, n_classes - 1),
                st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]) | st.floats(0, 1),
                half,
                st.integers(0, 10),
            ),
            max_size=60,
        )
    )
    taxonomy = {lab for *_, lab, _, _ in gt_rows}
    pred_rows = [(f"v{v}", f"c{c}", sc, s, s + length / 2) for v, c, sc, s, length in preds
                 if f"c{c}" in taxonomy]
    dups = draw(st.lists(st.integers(0, max(len(pred_rows) - 1, 0)), max_size=5))
    if pred_rows:
        pred_rows += [pred_rows[i] for i in dups]
    thr = draw(
        st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.95, 1.0]), min_size=1,
                 max_size=4, unique=True)
    )
    subset = draw(st.sampled_from([None, "test", "VALIDATION"]))
    return gt_rows, pred_rows, thr, subset


def reference(gt_rows, pred_rows, thr, subset=None, ambiguous=None):
    rows = [(v, lab, s, e) for v, sub, lab, s, e in gt_rows
            if lab is not None and (subset is None or sub.lower() == subset.lower())]
    labels_in = {lab for _, lab, _, _ in rows}
    preds = [p for p in pred_rows if p[1] in labels_in]  # other classes are not scored
    return reference_detection_map(rows, preds, thr, ambiguous)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_matches_loop_reference(problem):
    gt_rows, pred_rows, thr, subset = problem
    gt, det = build(gt_rows, pred_rows)
    has_gt = any(lab is not None and (subset is None or sub.lower() == subset.lower())
                 for _, sub, lab, _, _ in gt_rows)
    has_subset = any(subset is None or sub.lower() == subset.lower() for _, sub, *_ in gt_rows)
    if not has_gt:
        with pytest.raises(ValueError):
            detection_map(gt, det, thr, subset=subset)
        return
    assert has_subset
    res = detection_map(gt, det, thr, subset=subset)
    labels, ap = reference(gt_rows, pred_rows, thr, subset)
    assert res.labels == labels
    np.testing.assert_array_equal(res.ap, ap)  # bit-identical
    np.testing.assert_array_equal(res.mAP, ap.mean(axis=1))
    assert res.average_mAP == ap.mean(axis=1).mean()


@settings(max_examples=60, deadline=None)
@given(problems(), st.lists(st.tuples(st.integers(0, 5), half, st.integers(0, 6)), max_size=6))
def test_ambiguous_matches_reference(problem, amb):
    gt_rows, pred_rows, thr, _ = problem
    if not any(lab is not None for _, _, lab, _, _ in gt_rows):
        return
    gt, det = build(gt_rows, pred_rows)
    amb_rows = [(f"v{v}", s, s + length / 2) for v, s, length in amb]
    amb_dict = {}
    for v, s, e in amb_rows:
        amb_dict.setdefault(v, []).append([s, e])
    res = detection_map(gt, det, thr, ambiguous=amb_dict)
    labels, ap = reference(gt_rows, pred_rows, thr, None, amb_rows)
    assert res.labels == labels
    np.testing.assert_array_equal(res.ap, ap)


@pytest.mark.parametrize("seed", range(4))
def test_many_score_ties_large_classes(seed):
    # > 16 equal scores per class: numpy's default argsort is no longer an insertion sort,
    # so the official tie order is not a stable one; the result must still be identical.
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows = [], []
    for v in range(8):
        for _ in range(12):
            s = float(rng.integers(0, 200)) / 2
            gt_rows.append((f"v{v}", "test", f"c{rng.integers(0, 3)}", s,
                            s + float(rng.integers(1, 12)) / 2))
        for _ in range(150):
            s = float(rng.integers(0, 200)) / 2
            pred_rows.append((f"v{rng.integers(0, 9)}", f"c{rng.integers(0, 3)}",
                              float(rng.integers(0, 4)) / 4, s,
                              s + float(rng.integers(0, 12)) / 2))
    gt, det = build(gt_rows, pred_rows)
    thr = [0.1, 0.3, 0.5, 0.7]
    res = detection_map(gt, det, thr)
    labels, ap = reference(gt_rows, pred_rows, thr)
    assert res.labels == labels
    np.testing.assert_array_equal(res.ap, ap)


def test_tiou_tie_follows_official_scan_order():
    # The prediction [10, 20] has tIoU 0.8 with both GT; which one it takes decides whether
    # the second prediction [12, 20] (tIoU 1.0 with the second GT only) can match.
    gt_rows = [("v", "test", "a", 10.0, 18.0), ("v", "test", "a", 12.0, 20.0)]
    pred_rows = [("v", "a", 0.9, 10.0, 20.0), ("v", "a", 0.8, 12.0, 20.0)]
    gt, det = build(gt_rows, pred_rows)
    res = detection_map(gt, det, [0.5, 0.7])
    _, ap = reference(gt_rows, pred_rows, [0.5, 0.7])
    np.testing.assert_array_equal(res.ap, ap)
    # numpy's argsort of [0.8, 0.8] is [0, 1]; reversed, GT 1 ([12, 20]) is scanned first, so
    # the first prediction takes it and at tIoU 0.7 the second prediction (tIoU 0.6 with
    # GT 0) finds no free GT: AP 0.5. Scanning GT 0 first would have given 1.0.
    assert np.argsort(np.array([0.8, 0.8]))[::-1].tolist() == [1, 0]
    assert res.ap[:, 0].tolist() == [1.0, 0.5]


def test_hand_computed():
    gt = {"database": {"v1": {"subset": "test", "annotations": [
        {"label": "a", "segment": [0.0, 10.0]},
        {"label": "a", "segment": [20.0, 30.0]},
        {"label": "b", "segment": [0.0, 5.0]}]}}}
    preds = Detections.from_records([
        ("v1", "a", 0.9, 0.0, 10.0),    # TP
        ("v1", "a", 0.8, 1.0, 10.0),    # duplicate of GT 0 -> FP
        ("v1", "a", 0.7, 21.0, 30.0),   # tIoU 0.9 -> TP at 0.5, FP at 0.95
        ("v2", "a", 0.95, 0.0, 10.0),   # unknown video -> FP (ranked first)
    ])
    res = detection_map(gt, preds, [0.5, 0.95])
    # class a, tIoU 0.5: ranks FP, TP, FP, TP -> P = 0, 1/2, 1/3, 2/4; R = 0, .5, .5, 1
    # interpolated: 0.5 * max(1/2, 1/3, 1/2) + 0.5 * 1/2 = 0.5
    # tIoU 0.95: FP, TP, FP, FP -> 0.5 * 1/2 = 0.25; class b has no prediction -> 0
    np.testing.assert_allclose(res.ap, [[0.5, 0.0], [0.25, 0.0]])
    np.testing.assert_allclose(res.mAP, [0.25, 0.125])
    assert res.average_mAP == pytest.approx(0.1875)
    assert res.labels == ["a", "b"]
    d = res.to_dict()
    assert set(d) == {"tiou", "mAP", "average_mAP", "per_class"}
    assert d["per_class"] == {"a": [0.5, 0.25], "b": [0.0, 0.0]}
    json.dumps(d)
    text = str(res)
    assert "mAP" in text and "0.50" in text and "18.75" in text
    assert "a" in res.table(per_class=True)


def test_zero_length_segments_follow_official_nan_rule():
    # official segment_iou gives 0/0 = NaN for two zero-length segments; NaN is not "< thr",
    # so the official loop counts it as a match (ranked before every other GT).
    gt_rows = [("v", "test", "a", 5.0, 5.0), ("v", "test", "a", 5.0, 8.0)]
    pred_rows = [("v", "a", 0.9, 3.0, 3.0), ("v", "a", 0.5, 5.0, 8.0)]
    gt, det = build(gt_rows, pred_rows)
    res = detection_map(gt, det, [0.5])
    _, ap = reference(gt_rows, pred_rows, [0.5])
    np.testing.assert_array_equal(res.ap, ap)
    assert res.ap[0, 0] == 1.0


def test_inputs_paths_dicts_objects_agree(tmp_path):
    gt_rows = [("v1", "Test", "a", 0.0, 4.0), ("v2", "Test", "b", 1.0, 3.0),
               ("v3", "Validation", "a", 0.0, 1.0)]
    pred_rows = [("v1", "a", 0.5, 0.5, 4.0), ("v2", "b", 0.4, 0.0, 3.0),
                 ("v3", "a", 0.9, 0.0, 1.0)]
    gt, det = build(gt_rows, pred_rows)
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(det.to_dict()))
    results = [
        detection_map(gt_path, pred_path, THUMOS14_TIOU, subset="test"),
        detection_map(str(gt_path), str(pred_path), THUMOS14_TIOU, subset="test"),
        detection_map(gt, det.to_dict(), THUMOS14_TIOU, subset="test"),
        detection_map(load_annotations(gt), det, THUMOS14_TIOU, subset="test"),
    ]
    for r in results[1:]:
        np.testing.assert_array_equal(r.ap, results[0].ap)
    # the validation-subset prediction on v3 is a false positive for class a in "test"
    assert results[0].ap[0, 0] < 1.0


def test_default_thresholds_are_official():
    np.testing.assert_array_equal(ACTIVITYNET_TIOU, np.linspace(0.5, 0.95, 10))
    assert THUMOS14_TIOU.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def test_errors():
    gt, det = build([("v", "test", "a", 0.0, 1.0)], [("v", "zzz", 0.5, 0.0, 1.0)])
    with pytest.raises(ValueError, match="label 'zzz' is not in the ground-truth taxonomy"):
        detection_map(gt, det)
    with pytest.raises(ValueError, match=r"results\[0\].label: label 'zzz'"):
        detection_map(gt, det.to_dict())
    with pytest.raises(ValueError, match="tiou_thresholds"):
        detection_map(gt, Detections.empty(), [])
    with pytest.raises(ValueError, match="tiou_thresholds"):
        detection_map(gt, Detections.empty(), [1.5])
    with pytest.raises(ValueError, match="no video in subset 'train'"):
        detection_map(gt, Detections.empty(), subset="train")


def test_labels_without_gt_in_subset_are_not_scored():
    gt_rows = [("v1", "test", "a", 0.0, 4.0), ("v2", "val", "b", 0.0, 4.0)]
    gt, _ = build(gt_rows, [])
    det = Detections.from_records([("v1", "a", 0.5, 0.0, 4.0), ("v1", "b", 0.9, 0.0, 4.0)])
    res = detection_map(gt, det, [0.5], subset="test")
    assert res.labels == ["a"] and res.ap[0, 0] == 1.0


def test_empty_predictions():
    gt, _ = build([("v", "test", "a", 0.0, 1.0)], [])
    res = detection_map(gt, Detections.empty(), [0.5])
    assert res.ap.tolist() == [[0.0]] and res.num_predictions == 0


def test_filter_ambiguous_touching_is_kept():
    det = Detections.from_records([
        ("v", "a", 0.5, 0.0, 1.0),   # touches [1, 2] -> kept
        ("v", "a", 0.5, 0.5, 1.5),   # overlaps -> dropped
        ("w", "a", 0.5, 1.2, 1.3),   # other video -> kept
        ("v", "a", 0.5, 2.0, 3.0),   # touches -> kept
    ])
    kept = filter_ambiguous(det, {"v": [[1.0, 2.0]]})
    assert kept.to_records() == [det.to_records()[i] for i in (0, 2, 3)]


def test_real_ambiguous_file_parses():
    path = shared_data("thumos14/Thumos14reduced-Annotations/Ambiguous_test.txt")
    if path is None:
        pytest.skip("THUMOS14 annotations not available")
    det = Detections.from_records([("video_test_0000278", "x", 0.5, 0.5, 0.6),
                                   ("video_test_0000278", "x", 0.5, 50.0, 51.0)])
    kept = filter_ambiguous(det, path)
    assert len(kept) == 1 and kept.segment[0, 0] == 50.0


def _thumos():
    path = shared_data(THUMOS_JSON)
    if path is None:
        pytest.skip("THUMOS14 annotations not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_annotations(path), path


def test_thumos14_gt_as_predictions_is_perfect():
    gt, path = _thumos()
    test = {v: a for v, a in gt.items() if a.subset.lower() == "test"}
    assert len(test) == 212
    det = Detections.from_records(
        (v, lab, 1.0, s, e) for v, a in test.items()
        for lab, (s, e) in zip(a.labels, a.segments.tolist())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = detection_map(path, det, THUMOS14_TIOU, subset="test")
    assert len(res.labels) == 20
    np.testing.assert_array_equal(res.mAP, np.ones(7))


def test_thumos14_random_predictions_match_reference():
    gt, _ = _thumos()
    rng = np.random.default_rng(0)
    vids = [v for v, a in gt.items() if a.subset.lower() == "test"][:25]
    labels = sorted({lab for v in vids for lab in gt[v].labels})
    rows = []
    for v in vids:
        a = gt[v]
        for _ in range(60):
            if len(a) and rng.random() < 0.6:
                i = rng.integers(len(a))
                s, e = a.segments[i] + rng.normal(0, 0.5, 2)
                lab = a.labels[i]
            else:
                s = rng.uniform(0, a.duration)
                e = s + rng.exponential(4)
                lab = labels[rng.integers(len(labels))]
            s, e = min(s, e), max(s, e)
            rows.append((v, lab, round(float(rng.random()), 2), float(s), float(e)))
    sub = {v: gt[v] for v in vids}
    res = detection_map(sub, Detections.from_records(rows), THUMOS14_TIOU)
    gt_rows = [(v, "t", lab, s, e) for v in vids
               for lab, (s, e) in zip(gt[v].labels, gt[v].segments.tolist())]
    labels_ref, ap = reference(gt_rows, rows, THUMOS14_TIOU)
    assert res.labels == labels_ref
    np.testing.assert_array_equal(res.ap, ap)
    assert 0 < res.average_mAP < 1 and not math.isnan(res.average_mAP)


def test_video_annotation_input():
    gt = {"v": VideoAnnotation("v", "test", 10.0, None, [[0, 2], [3, 5]], ["a", "a"])}
    det = Detections.from_records([("v", "a", 0.9, 3.0, 5.0), ("v", "a", 0.1, 0.0, 2.0)])
    assert detection_map(gt, det, [0.5]).ap[0, 0] == 1.0
