"""DETAD error analysis (``analyze_detections``) against a plain-loop reference of the same
definitions: official greedy matching per class, DETAD's false-positive categories, AP / AP_N
with the official interpolation, per-bin normalized mAP and false-negative rates."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagraph.evaluation import (
    CHARACTERISTIC_BINS,
    ERROR_TYPES,
    analyze_detections,
    detection_map,
)
from tagraph.evaluation.analysis import PROFILE_K, _bin_index
from tagraph.io import Detections, VideoAnnotation

from .reference_impl import _interpolated_ap, _tiou

TP, DOUBLE, WRONG, LOC, CONF, BG = range(6)

pytestmark = pytest.mark.filterwarnings("ignore::tagraph.io.FormatWarning")


# ---------------------------------------------------------------------------------------------
# plain-loop reference
# ---------------------------------------------------------------------------------------------


def _bin_of(x, edges):
    """pandas.cut(right=True, include_lowest=True) on one value; None outside / NaN."""
    if x is None or math.isnan(x):
        return None
    for i in range(len(edges) - 1):
        if edges[i] < x <= edges[i + 1] or (i == 0 and x == edges[0]):
            return i
    return None


def _ap_of(tp_flags, npos, n_avg=None):
    """Official AP of a ranked list of TP (1) / FP (0) flags; empty list -> 0."""
    if not tp_flags:
        return 0.0
    tp_cum = np.cumsum(np.array(tp_flags, dtype=np.float64))
    fp_cum = np.cumsum(1.0 - np.array(tp_flags, dtype=np.float64))
    rec = tp_cum / npos
    if n_avg is None:
        prec = tp_cum / (tp_cum + fp_cum)
    else:
        prec = rec * n_avg / (rec * n_avg + fp_cum)
    return float(_interpolated_ap(list(prec), list(rec)))


def reference_analysis(gt, preds, durations, alpha=0.5, min_tiou=0.1, bins="activitynet",
                       fn_min_precision=0.05):
    """gt: (video, label, start, end) of the analysed subset in file order; preds: (video,
    label, score, start, end) in file order; durations: {video: duration or None}."""
    spec = CHARACTERISTIC_BINS[bins]
    labels = []
    for _, lab, _, _ in gt:
        if lab not in labels:
            labels.append(lab)
    C, G = len(labels), len(gt)
    n_avg = G / C
    npos = [sum(1 for g in gt if g[1] == lab) for lab in labels]
    preds = [p for p in preds if p[1] in labels]  # other classes are not scored

    # official ranking and greedy matching, per class
    ranked, matched = {}, {}
    for c, lab in enumerate(labels):
        ps = [i for i, p in enumerate(preds) if p[1] == lab]
        scores = np.array([preds[i][2] for i in ps], dtype=np.float64)
        ranked[c] = [ps[j] for j in scores.argsort()[::-1]] if ps else []
        locked = set()
        for i in ranked[c]:
            v = preds[i][0]
            js = [j for j, g in enumerate(gt) if g[0] == v and g[1] == lab]
            if not js:
                continue
            tious = np.array([_tiou((preds[i][3], preds[i][4]), (gt[j][2], gt[j][3]))
                              for j in js])
            for k in tious.argsort()[::-1]:
                if tious[k] < alpha:
                    break
                if js[k] in locked:
                    continue
                locked.add(js[k])
                matched[i] = js[k]
                break

    # DETAD's category of each prediction
    kind = {}
    for i, p in enumerate(preds):
        if i in matched:
            kind[i] = TP
            continue
        best, best_t = None, None
        for j, g in enumerate(gt):
            if g[0] != p[0]:
                continue
            t = _tiou((p[3], p[4]), (g[2], g[3]))
            t = math.inf if math.isnan(t) else t
            if best is None or t > best_t:
                best, best_t = j, t
        if best is None or best_t < min_tiou:
            kind[i] = BG
        elif best_t >= alpha:
            kind[i] = DOUBLE if gt[best][1] == p[1] else WRONG
        else:
            kind[i] = LOC if gt[best][1] == p[1] else CONF

    counts = np.zeros((PROFILE_K, 6), dtype=np.int64)
    for c in range(C):
        for pos, i in enumerate(ranked[c]):
            if pos // npos[c] < PROFILE_K:
                counts[pos // npos[c], kind[i]] += 1

    def mean_ap(keep, n=None):
        return float(np.mean(np.array([
            _ap_of([1 if i in matched else 0 for i in ranked[c] if keep(i)], npos[c], n)
            for c in range(C)])))

    ap = [_ap_of([1 if i in matched else 0 for i in ranked[c]], npos[c]) for c in range(C)]
    ap_n = [_ap_of([1 if i in matched else 0 for i in ranked[c]], npos[c], n_avg)
            for c in range(C)]
    removed, removed_n = {}, {}
    for e in range(1, 6):
        removed[ERROR_TYPES[e]] = mean_ap(lambda i, e=e: kind[i] != e)
        removed_n[ERROR_TYPES[e]] = mean_ap(lambda i, e=e: kind[i] != e, n_avg)
    removed["all"] = mean_ap(lambda i: i in matched)
    removed_n["all"] = mean_ap(lambda i: i in matched, n_avg)

    # false negatives: matched by a prediction with normalized precision > fn_min_precision
    detected = set()
    for c in range(C):
        tp_cum = fp_cum = 0
        for i in ranked[c]:
            if i in matched:
                tp_cum += 1
            else:
                fp_cum += 1
            rec = np.float64(tp_cum) / np.float64(npos[c])
            prec_n = rec * n_avg / (rec * n_avg + np.float64(fp_cum))
            if i in matched and prec_n > fn_min_precision:
                detected.add(matched[i])

    # characteristics and sensitivity
    values = {"coverage": [], "length": [], "num_instances": []}
    for v, lab, s, e in gt:
        d = durations.get(v)
        values["length"].append(e - s)
        values["coverage"].append(None if d is None else float(np.float64(e - s) / d))
        values["num_instances"].append(sum(1 for g in gt if g[0] == v and g[1] == lab))
    sens = {}
    for name, (edges, names) in spec.items():
        which = [_bin_of(x, edges) for x in values[name]]
        n_bin, m_n, fn = [], [], []
        for b in range(len(names)):
            members = {j for j in range(G) if which[j] == b}
            n_bin.append(len(members))
            if not members:
                m_n.append(np.nan)
                fn.append(np.nan)
                continue
            fn.append(len(members - detected) / len(members))
            aps = []
            for c, lab in enumerate(labels):
                n_cb = sum(1 for j in members if gt[j][1] == lab)
                if n_cb == 0:
                    continue
                flags = [1 if i in matched else 0 for i in ranked[c]
                         if i not in matched or matched[i] in members]
                aps.append(_ap_of(flags, n_cb, n_avg))
            m_n.append(float(np.mean(np.array(aps))))
        sens[name] = (n_bin, m_n, fn, sum(1 for w in which if w is None))
    return {
        "labels": labels, "counts": counts, "ap": ap, "ap_n": ap_n, "removed": removed,
        "removed_n": removed_n, "recall": [sum(1 for i in ranked[c] if i in matched) / npos[c]
                                           for c in range(C)],
        "fn_rate": (G - len(detected)) / G, "sensitivity": sens,
    }


def check_against_reference(res, ref):
    assert res.labels == ref["labels"]
    np.testing.assert_array_equal(res.fp_counts, ref["counts"])
    assert res.ap.tolist() == ref["ap"]
    assert res.ap_n.tolist() == ref["ap_n"]
    assert res.mAP_removed == ref["removed"]
    assert res.mAP_N_removed == ref["removed_n"]
    assert res.recall.tolist() == ref["recall"]
    assert res.fn_rate == ref["fn_rate"]
    for name, (n_bin, m_n, fn, unbinned) in ref["sensitivity"].items():
        s = res.sensitivity[name]
        assert s.num_gt.tolist() == n_bin
        np.testing.assert_array_equal(s.mAP_N, np.array(m_n))  # NaN == NaN here
        np.testing.assert_array_equal(s.fn_rate, np.array(fn))
        assert s.num_unbinned == unbinned


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def build(videos, pred_rows):
    """videos: {vid: (subset, duration, [(label, s, e)])} -> GT dict; preds -> Detections."""
    db = {}
    for vid, (subset, duration, anns) in videos.items():
        db[vid] = {"subset": subset, "annotations": [
            {"label": lab, "segment": [s, e]} for lab, s, e in anns]}
        if duration is not None:
            db[vid]["duration"] = duration
    return {"database": db}, Detections.from_records(pred_rows)


half = st.integers(0, 40).map(lambda x: x / 2)


@st.composite
def problems(draw):
    n_videos = draw(st.integers(1, 5))
    n_classes = draw(st.integers(1, 4))
    videos, gt_rows = {}, []
    for v in range(n_videos):
        # v0 is in the analysed subset with at least one instance
        subset = "Test" if v == 0 else draw(st.sampled_from(["Test", "Test", "Validation"]))
        duration = draw(st.sampled_from([None, 10.0, 25.0, 100.0, 400.0]))
        anns = [(f"c{c}", s, s + length / 2) for c, s, length in draw(st.lists(
            st.tuples(st.integers(0, n_classes - 1), half, st.integers(0, 12)),
            min_size=1 if v == 0 else 0, max_size=8))]
        if anns and draw(st.booleans()):
            anns.append(anns[-1])  # duplicate ground-truth instance
        if anns and n_classes > 1 and draw(st.booleans()):  # same segment, another class
            lab, s, e = anns[draw(st.integers(0, len(anns) - 1))]
            anns.insert(draw(st.integers(0, len(anns))),
                        (f"c{(int(lab[1:]) + 1) % n_classes}", s, e))
        videos[f"v{v}"] = (subset, duration, anns)
        if subset == "Test":
            gt_rows += [(f"v{v}", lab, s, e) for lab, s, e in anns]
    taxonomy = sorted({lab for _, _, anns in videos.values() for lab, _, _ in anns})
    preds = draw(st.lists(st.tuples(
        st.integers(0, n_videos + 1),  # two unknown videos
        st.sampled_from(taxonomy),
        st.sampled_from([0.1, 0.3, 0.5, 0.9]) | st.floats(0, 1),
        half, st.integers(0, 12)), max_size=60))
    pred_rows = [(f"v{v}", lab, sc, s, s + length / 2) for v, lab, sc, s, length in preds]
    dups = draw(st.lists(st.integers(0, max(len(pred_rows) - 1, 0)), max_size=6))
    if pred_rows:
        pred_rows += [pred_rows[i] for i in dups]
    alpha = draw(st.sampled_from([0.1, 0.3, 0.5, 0.7]))
    bins = draw(st.sampled_from(["activitynet", "thumos14"]))
    return videos, gt_rows, pred_rows, alpha, bins


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_matches_reference(problem):
    videos, gt_rows, pred_rows, alpha, bins = problem
    gt, det = build(videos, pred_rows)
    res = analyze_detections(gt, det, alpha, subset="test", bins=bins)
    durations = {v: d for v, (_, d, _) in videos.items()}
    check_against_reference(res, reference_analysis(gt_rows, pred_rows, durations, alpha,
                                                    bins=bins))
    # the AP is detection_map's, bit for bit
    dm = detection_map(gt, det, [alpha], subset="test")
    assert res.ap.tolist() == dm.ap[0].tolist() and res.mAP == float(dm.mAP[0])
    json.dumps(res.to_dict(), allow_nan=False)


def random_problem(seed, n_videos=12, n_classes=5, per_video=120):
    rng = np.random.default_rng(seed)
    videos, gt_rows, pred_rows = {}, [], []
    for v in range(n_videos):
        m = int(rng.integers(0, 15))
        dur = float(rng.choice([60.0, 200.0]))
        s = np.round(rng.uniform(0, dur - 20, m), 1)
        e = s + np.round(rng.exponential(6.0, m) + 0.5, 1)
        labs = [f"c{c}" for c in rng.integers(0, n_classes, m)]
        anns = list(zip(labs, s.tolist(), e.tolist()))
        subset = "test" if v < n_videos - 2 else "validation"
        videos[f"v{v}"] = (subset, dur, anns)
        if subset == "test":
            gt_rows += [(f"v{v}", lab, a, b) for lab, a, b in anns]
        for _ in range(per_video):
            if anns and rng.random() < 0.5:
                lab, a, b = anns[int(rng.integers(len(anns)))]
                if rng.random() < 0.2:
                    lab = f"c{int(rng.integers(n_classes))}"
                a, b = sorted((a + rng.normal(0, 1.0), b + rng.normal(0, 1.0)))
            else:
                lab = f"c{int(rng.integers(n_classes))}"
                a = float(rng.uniform(0, dur))
                b = a + float(rng.exponential(5.0))
            # 2-decimal scores: many ties, in classes of > 16 predictions (introsort path)
            pred_rows.append((f"v{v}", lab, round(float(rng.random()), 2), round(a, 1),
                              round(b, 1)))
    return videos, gt_rows, pred_rows


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference_random(seed):
    videos, gt_rows, pred_rows = random_problem(seed)
    gt, det = build(videos, pred_rows)
    res = analyze_detections(gt, det, 0.5, subset="test")
    durations = {v: d for v, (_, d, _) in videos.items()}
    check_against_reference(res, reference_analysis(gt_rows, pred_rows, durations, 0.5))
    assert res.ap.tolist() == detection_map(gt, det, [0.5], subset="test").ap[0].tolist()


def test_profile_fractions_and_removing_every_false_positive():
    videos, _, pred_rows = random_problem(3)
    gt, det = build(videos, pred_rows)
    res = analyze_detections(gt, det, 0.5, subset="test")
    np.testing.assert_allclose(res.fp_profile.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.fp_profile_slices.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # cumulative profile = running counts of the per-slice counts
    np.testing.assert_allclose(
        res.fp_profile, np.cumsum(res.fp_counts, 0) / np.cumsum(res.fp_counts, 0).sum(
            1, keepdims=True))
    # without any false positive, precision is 1 everywhere: AP = recall (the recall bound)
    np.testing.assert_allclose(res.mAP_removed["all"], res.recall.mean(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.mAP_N_removed["all"], res.recall.mean(), rtol=0, atol=1e-12)
    assert all(g >= 0 for g in res.mAP_gain.values())
    assert all(g >= 0 for g in res.mAP_N_gain.values())


def test_categories_hand_computed():
    videos = {"v": ("test", 100.0, [("a", 0.0, 10.0), ("b", 20.0, 30.0)])}
    gt, det = build(videos, [
        ("v", "a", 0.9, 0.0, 10.0),   # true positive
        ("v", "a", 0.8, 0.0, 10.0),   # double detection
        ("v", "b", 0.7, 0.0, 10.0),   # wrong label (best instance is the 'a' one)
        ("v", "a", 0.6, 0.0, 3.0),    # localization (tIoU 0.3)
        ("v", "b", 0.5, 0.0, 3.0),    # confusion
        ("v", "a", 0.4, 40.0, 50.0),  # background: overlaps nothing
        ("w", "a", 0.3, 0.0, 10.0),   # background: video without ground truth
    ])
    res = analyze_detections(gt, det, 0.5)
    expected = np.zeros((PROFILE_K, 6), dtype=np.int64)
    # G_a = G_b = 1: class a ranks TP, DD, LOC, BG, BG; class b ranks WRONG, CONF
    for k, kind in [(0, TP), (1, DOUBLE), (2, LOC), (3, BG), (4, BG), (0, WRONG), (1, CONF)]:
        expected[k, kind] += 1
    np.testing.assert_array_equal(res.fp_counts, expected)
    np.testing.assert_allclose(res.fp_profile[0], [0.5, 0, 0.5, 0, 0, 0])
    assert res.recall.tolist() == [1.0, 0.0] and res.mAP == 0.5
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["fp_profile"]["types"] == list(ERROR_TYPES)
    assert d["sensitivity"]["length"]["bins"] == ["XS", "S", "M", "L", "XL"]
    assert d["sensitivity"]["length"]["edges"][-1] is None  # infinity
    assert "False-positive profile" in str(res) and "1G" in str(res)


def test_boundary_tious():
    # tIoU exactly min_tiou (1/10) is a localization error, exactly alpha (1/2) a match
    videos = {"v": ("test", 100.0, [("a", 0.0, 1.0), ("a", 20.0, 25.0)])}
    gt, det = build(videos, [("v", "a", 0.9, 0.0, 10.0), ("v", "a", 0.8, 20.0, 30.0)])
    res = analyze_detections(gt, det, 0.5)
    assert res.fp_counts[0].tolist() == [1, 0, 0, 1, 0, 0]


def test_zero_length_segments_match_like_official():
    # 0/0 tIoU (zero-length prediction and instance) counts as a match in the official code
    videos = {"v": ("test", 100.0, [("a", 5.0, 5.0), ("a", 10.0, 20.0)])}
    gt, det = build(videos, [("v", "a", 0.9, 7.0, 7.0), ("v", "a", 0.8, 8.0, 8.0)])
    res = analyze_detections(gt, det, 0.5, bins="thumos14")
    assert res.fp_counts[0].tolist() == [1, 1, 0, 0, 0, 0]  # TP, then a double detection
    fn = res.sensitivity["length"].fn_rate  # lengths 0 (XS) and 10 (M)
    assert (fn[0], fn[2]) == (0.0, 1.0)


def test_tied_instances_first_in_file_order():
    # the FP's best instances tie (tIoU 1 with both): DETAD's argmax takes the first, 'a'
    videos = {"v": ("test", 100.0, [("a", 0.0, 10.0), ("b", 0.0, 10.0)])}
    gt, det = build(videos, [("v", "b", 0.9, 0.0, 10.0), ("v", "b", 0.8, 0.0, 10.0)])
    res = analyze_detections(gt, det, 0.5)
    assert res.fp_counts[0].tolist() == [1, 0, 0, 0, 0, 0]
    assert res.fp_counts[1].tolist() == [0, 0, 1, 0, 0, 0]  # wrong label, not double


@pytest.mark.parametrize("swap", [False, True])
def test_true_positive_takes_instance_in_official_scan_order(swap):
    # tIoU 0.5 with both instances of its class: np.argsort([.5, .5])[::-1] scans the second
    # instance of the row first, so the official matching gives the TP the second one
    anns = [("a", 10.0, 15.0), ("a", 0.0, 20.0)]  # lengths 5 (bin S) and 20 (bin XL)
    videos = {"v": ("test", 100.0, anns[::-1] if swap else anns)}
    gt, det = build(videos, [("v", "a", 0.9, 10.0, 20.0)])
    res = analyze_detections(gt, det, 0.5, bins="thumos14")
    fn = res.sensitivity["length"].fn_rate
    assert (fn[1], fn[4]) == ((0.0, 1.0) if swap else (1.0, 0.0))


@pytest.mark.parametrize("n_fp,missed", [(18, 0.0), (19, 1.0)])
def test_false_negative_needs_normalized_precision_above_5_percent(n_fp, missed):
    # one class, one instance (N = 1): the TP ranked after n_fp FPs has P_N = 1 / (1 + n_fp);
    # 1/20 is exactly 0.05, which does not count (DETAD discards P_N <= 0.05)
    videos = {"v": ("test", 100.0, [("a", 0.0, 10.0)])}
    preds = [("v", "a", 1.0 - i / 100, 50.0, 60.0) for i in range(n_fp)]
    gt, det = build(videos, [*preds, ("v", "a", 0.5, 0.0, 10.0)])
    res = analyze_detections(gt, det, 0.5)
    assert res.recall.tolist() == [1.0] and res.fn_rate == missed
    assert res.sensitivity["length"].fn_rate[0] == missed


def test_bins_like_pandas_cut():
    edges = np.array([0.0, 0.2, 0.4, 1.0])
    x = np.array([0.0, 0.1, 0.2, 0.2000001, 1.0, 1.5, -0.1, np.nan, np.inf])
    assert _bin_index(x, edges).tolist() == [0, 0, 0, 1, 2, -1, -1, -1, -1]
    counts = np.array([1.0, 2.0, 4.0, 5.0, 8.0, 9.0])
    edges = np.array(CHARACTERISTIC_BINS["activitynet"]["num_instances"][0])
    assert _bin_index(counts, edges).tolist() == [0, 1, 1, 2, 2, 3]


def test_inputs_like_detection_map(tmp_path):
    from tagraph.io import save_annotations, save_results

    videos, _, pred_rows = random_problem(4, n_videos=4, per_video=30)
    gt, det = build(videos, pred_rows)
    res = analyze_detections(gt, det, subset="TEST")
    # paths, parsed JSON and {video: VideoAnnotation} give the same figures
    save_annotations(tmp_path / "gt.json", {
        v: VideoAnnotation(v, s, d, None, [(a, b) for _, a, b in anns],
                           [lab for lab, _, _ in anns])
        for v, (s, d, anns) in videos.items()})
    save_results(tmp_path / "res.json", det)
    from_files = analyze_detections(tmp_path / "gt.json", str(tmp_path / "res.json"),
                                    subset="test")
    assert from_files.to_dict() == res.to_dict()
    with pytest.raises(ValueError, match="tiou"):
        analyze_detections(gt, det, 0.0)
    with pytest.raises(ValueError, match="tiou"):
        analyze_detections(gt, det, [0.5, 0.7])
    with pytest.raises(ValueError, match="bins preset"):
        analyze_detections(gt, det, bins="nope")
    bad = Detections.from_records([("v0", "zzz", 0.5, 0.0, 1.0)])
    with pytest.raises(ValueError, match="not in the ground-truth taxonomy"):
        analyze_detections(gt, bad)
    # no prediction at all: zero profile, zero AP, every instance missed
    none = analyze_detections(gt, Detections.empty(), subset="test")
    assert none.fp_profile.sum() == 0 and none.mAP == 0 and none.fn_rate == 1.0
