import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.ops import segment_intersection, segment_iou, segment_iou_pairwise, segment_overlap


def _loop_iou(a, b):
    out = torch.zeros(len(a), len(b), dtype=torch.float64)
    for i, (s1, e1) in enumerate(a.tolist()):
        for j, (s2, e2) in enumerate(b.tolist()):
            inter = max(0.0, min(e1, e2) - max(s1, s2))
            union = (e1 - s1) + (e2 - s2) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def test_segment_iou_hand_computed():
    a = torch.tensor([[0.0, 2.0], [1.0, 3.0], [5.0, 6.0]])
    iou = segment_iou(a, a)
    expected = torch.tensor([[1.0, 1 / 3, 0.0], [1 / 3, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(iou, expected)
    # Touching segments do not overlap; zero-length segments have IoU 0.
    b = torch.tensor([[2.0, 4.0], [1.0, 1.0]])
    assert torch.allclose(segment_iou(a[:1], b), torch.tensor([[0.0, 0.0]]))
    assert segment_iou(b[1:], b[1:]).item() == 0.0


def test_segment_overlap_and_intersection():
    a = torch.tensor([[0.0, 4.0], [3.0, 3.0]])
    b = torch.tensor([[1.0, 2.0], [3.0, 10.0]])
    assert torch.allclose(segment_intersection(a, b), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert torch.allclose(segment_overlap(a, b), torch.tensor([[0.25, 0.25], [0.0, 0.0]]))
    assert segment_iou(torch.empty(0, 2), b).shape == (0, 2)


segs = st.lists(
    st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 20, allow_nan=False)),
    min_size=0,
    max_size=12,
).map(lambda xs: torch.tensor([[s, s + d] for s, d in xs], dtype=torch.float64).reshape(-1, 2))


@settings(max_examples=60, deadline=None)
@given(segs, segs)
def test_segment_iou_matches_loop(a, b):
    iou = segment_iou(a, b)
    assert torch.allclose(iou, _loop_iou(a, b))
    assert ((iou >= 0) & (iou <= 1)).all()
    n = min(len(a), len(b))
    assert torch.allclose(segment_iou_pairwise(a[:n], b[:n]), iou.diagonal()[:n])
