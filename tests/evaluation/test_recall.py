import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.evaluation import average_recall
from tagraph.io import Detections

from .reference_impl import reference_average_recall

half = st.integers(0, 30).map(lambda x: x / 2)


@settings(max_examples=100, deadline=None)
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
    ref = reference_average_recall(ordered, prop_rows, an, thr)
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
