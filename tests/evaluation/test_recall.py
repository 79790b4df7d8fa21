import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.evaluation import average_recall
from tagraph.evaluation.recall import _rank_in_groups
from tagraph.io import Detections

from .reference_impl import _tiou

half = st.integers(0, 30).map(lambda x: x / 2)


def official_average_recall(gt, proposals, num_proposals, thresholds):
    """Plain transcription of the official ``eval_proposal.py`` ranking: per video, the
    proposals in file order sorted by ``np.argsort(score)[::-1]``, cut to the top n; a ground
    truth instance is recalled at t when one of them has tIoU >= t.
    gt: (video, start, end); proposals: (video, score, start, end). Returns recall [T, N]."""
    ranked = {}
    for v in dict.fromkeys(p[0] for p in proposals):
        rows = [p for p in proposals if p[0] == v]
        scores = np.array([p[1] for p in rows], dtype=np.float64)
        ranked[v] = [rows[i] for i in scores.argsort()[::-1]]
    recall = np.zeros((len(thresholds), len(num_proposals)))
    for t, thr in enumerate(thresholds):
        for n_i, n in enumerate(num_proposals):
            hits = 0
            for v, s, e in gt:
                if any(_tiou((p[2], p[3]), (s, e)) >= thr for p in ranked.get(v, [])[:n]):
                    hits += 1
            recall[t, n_i] = hits / len(gt)
    return recall


@settings(max_examples=80, deadline=None)
@given(
    gt=st.lists(st.tuples(st.integers(0, 3), half, st.integers(1, 10)), min_size=1,
                max_size=12),
    props=st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.2, 0.5, 0.9]) | st.floats(0, 1),
                             half, st.integers(0, 10)), max_size=50),
    an=st.lists(st.integers(1, 20), min_size=1, max_size=4, unique=True),
    thr=st.lists(st.sampled_from([0.1, 0.5, 0.7, 0.95]), min_size=1, max_size=3, unique=True),
)
def test_average_recall_matches_reference(gt, props, an, thr):
    gt_rows = [(f"v{v}", s, s + length / 2) for v, s, length in gt]
    prop_rows = [(f"v{v}", sc, s, s + length / 2) for v, sc, s, length in props]
    db = {}
    for v, s, e in gt_rows:
        db.setdefault(v, {"subset": "test", "annotations": []})["annotations"].append(
            {"label": "x", "segment": [s, e]})
    det = Detections.from_records((v, "any", sc, s, e) for v, sc, s, e in prop_rows)
    res = average_recall({"database": db}, det, an, thr)
    # the reference walks GT in file order per video; same set of instances
    ordered = [(v, s, e) for v in db for (s, e) in
               [tuple(a["segment"]) for a in db[v]["annotations"]]]
    ref = official_average_recall(ordered, prop_rows, an, thr)
    np.testing.assert_allclose(res.recall, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.average_recall, ref.mean(axis=0), atol=1e-12)
    assert res.num_gt == len(gt_rows)


def test_average_recall_hand_computed():
    gt = {"database": {"v": {"subset": "test", "annotations": [
        {"label": "a", "segment": [0.0, 10.0]}, {"label": "b", "segment": [20.0, 30.0]}]}}}
    det = Detections.from_records([
        ("v", "p", 0.9, 0.0, 9.0),     # tIoU 0.9 with GT 0
        ("v", "p", 0.8, 21.0, 30.0),   # tIoU 0.9 with GT 1
        ("w", "p", 1.0, 0.0, 10.0),    # other video: ignored
    ])
    res = average_recall(gt, det, [1, 2], [0.5, 0.95])
    np.testing.assert_allclose(res.recall, [[0.5, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(res.average_recall, [0.25, 0.5])
    assert res.to_dict()["num_proposals"] == [1, 2]
    assert "AR" in str(res)
    with pytest.raises(ValueError, match="num_proposals"):
        average_recall(gt, det, [0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_recall_ties_like_official(seed):
    # 2-decimal scores: many ties, also in videos with more than 16 proposals, where numpy's
    # default sort does not keep (or simply reverse) the file order of equal scores
    rng = np.random.default_rng(seed)
    db, gt_rows, prop_rows = {}, [], []
    for v in range(6):
        m = int(rng.integers(1, 8))
        s = np.round(rng.uniform(0, 80, m), 1)
        e = s + np.round(rng.uniform(1, 15, m), 1)
        db[f"v{v}"] = {"subset": "test", "annotations": [
            {"label": "x", "segment": [a, b]} for a, b in zip(s.tolist(), e.tolist())]}
        gt_rows += [(f"v{v}", a, b) for a, b in zip(s.tolist(), e.tolist())]
        for _ in range(int(rng.integers(1, 120))):
            a = round(float(rng.uniform(0, 90)), 1)
            prop_rows.append((f"v{v}", round(float(rng.random()), 2), a,
                              round(a + float(rng.uniform(0.5, 15)), 1)))
    det = Detections.from_records((v, "p", sc, a, b) for v, sc, a, b in prop_rows)
    an, thr = [1, 3, 10, 40], [0.3, 0.5, 0.7]
    res = average_recall({"database": db}, det, an, thr)
    ref = official_average_recall(gt_rows, prop_rows, an, thr)
    assert res.recall.tolist() == ref.tolist()


def test_rank_in_groups_is_official_argsort_per_group():
    rng = np.random.default_rng(0)
    sizes = [1, 2, 5, 16, 17, 40, 40, 200, 1000]  # equal sizes share one 2-D argsort call
    group = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    score = np.round(rng.random(len(group)), 2)
    ranked, bounds = _rank_in_groups(group, score, len(sizes) + 1)  # last group empty
    assert bounds.tolist() == [0, *np.cumsum(sizes).tolist(), sum(sizes)]
    for g in range(len(sizes)):
        idx = np.flatnonzero(group == g)  # file order
        official = idx[np.argsort(score[idx])[::-1]]
        assert ranked[bounds[g]:bounds[g + 1]].tolist() == official.tolist()
