import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.ops import batched_nms, nms, segment_iou, soft_nms


def _ref_nms(seg, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep = []
    for i in order:
        if all(segment_iou(seg[i : i + 1], seg[j : j + 1]).item() <= thr for j in keep):
            keep.append(i)
    return keep


def _ref_soft_nms(seg, scores, thr, method, sigma, score_thr):
    cur = {i: float(s) for i, s in enumerate(scores)}
    rank = {i: r for r, i in enumerate(sorted(cur, key=lambda i: (-cur[i], i)))}
    out, out_scores = [], []
    while cur:
        best = max(cur, key=lambda i: (cur[i], -rank[i]))
        if cur[best] < score_thr:
            break
        out.append(best)
        out_scores.append(cur.pop(best))
        for i in cur:
            ov = segment_iou(seg[best : best + 1], seg[i : i + 1]).item()
            if ov > thr:
                if method == "gaussian":
                    cur[i] *= math.exp(-ov * ov / sigma)
                elif method == "linear":
                    cur[i] *= 1 - ov
                else:
                    cur[i] = 0.0
    return out, out_scores


def test_nms_hand_computed():
    seg = torch.tensor([[0.0, 10.0], [1.0, 10.0], [0.0, 9.0], [20.0, 30.0], [9.5, 21.0]])
    scores = torch.tensor([0.9, 0.8, 0.95, 0.5, 0.4])
    assert nms(seg, scores, 0.5).tolist() == [2, 3, 4]
    # A chain: 0 suppresses 1, so 2 (overlapping only 1) survives.
    seg = torch.tensor([[0.0, 10.0], [5.0, 15.0], [10.0, 20.0]])
    assert nms(seg, torch.tensor([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]


def test_nms_ties_are_deterministic():
    seg = torch.tensor([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])
    assert nms(seg, torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(torch.empty(0, 2), torch.empty(0), 0.5).numel() == 0
    with pytest.raises(ValueError, match="scores"):
        nms(seg, torch.ones(2), 0.5)


case = st.integers(0, 25).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 60), min_size=n, max_size=n),
        st.lists(st.integers(1, 15), min_size=n, max_size=n),
        st.lists(st.integers(0, 4), min_size=n, max_size=n),  # few levels -> many ties
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    )
)


def _unpack(c):
    starts, lens, lvl, groups = c
    seg = torch.tensor([[s, s + d] for s, d in zip(starts, lens)], dtype=torch.float64)
    return seg.reshape(-1, 2), torch.tensor(lvl, dtype=torch.float64) / 4, torch.tensor(groups)


@settings(max_examples=80, deadline=None)
@given(case, st.sampled_from([0.0, 0.3, 0.5, 0.7]))
def test_nms_matches_reference(c, thr):
    seg, scores, _ = _unpack(c)
    assert nms(seg, scores, thr).tolist() == _ref_nms(seg, scores, thr)


@settings(max_examples=60, deadline=None)
@given(case, st.sampled_from(["gaussian", "linear", "hard"]), st.sampled_from([0.0, 0.4]))
def test_soft_nms_matches_reference(c, method, thr):
    seg, scores, _ = _unpack(c)
    scores = scores + 0.01
    idx, new = soft_nms(seg, scores, thr, method=method, sigma=0.5, score_threshold=0.05)
    ref_idx, ref_scores = _ref_soft_nms(seg, scores, thr, method, 0.5, 0.05)
    assert idx.tolist() == ref_idx
    assert torch.allclose(new, torch.tensor(ref_scores, dtype=new.dtype))


def test_soft_nms_max_num_and_method_check():
    seg = torch.tensor([[0.0, 1.0], [5.0, 6.0], [10.0, 11.0]])
    idx, scores = soft_nms(seg, torch.tensor([0.3, 0.9, 0.5]), max_num=2)
    assert idx.tolist() == [1, 2] and torch.allclose(scores, torch.tensor([0.9, 0.5]))
    with pytest.raises(ValueError, match="method"):
        soft_nms(seg, torch.ones(3), method="cubic")


def _per_group_nms(seg, scores, groups, thr):
    # Reference: plain nms() on each group, kept indices in the whole input.
    expected = []
    for grp in groups.unique().tolist():
        idx = (groups == grp).nonzero().flatten()
        expected += idx[nms(seg[idx], scores[idx], thr)].tolist()
    return expected


@settings(max_examples=60, deadline=None)
@given(case, st.sampled_from([0.3, 0.6]))
def test_batched_nms_equals_per_group(c, thr):
    seg, scores, groups = _unpack(c)
    keep, kept_scores = batched_nms(seg, scores, groups, thr)
    expected = _per_group_nms(seg, scores, groups, thr)
    assert sorted(keep.tolist()) == sorted(expected)
    assert torch.equal(kept_scores, scores[keep])
    assert (kept_scores[:-1] >= kept_scores[1:]).all()


@settings(max_examples=40, deadline=None)
@given(case)
def test_batched_soft_nms_equals_per_group(c):
    seg, scores, groups = _unpack(c)
    scores = scores + 0.01
    keep, new = batched_nms(seg, scores, groups, 0.0, method="gaussian", score_threshold=0.05)
    expected = {}
    for g in groups.unique().tolist():
        idx = (groups == g).nonzero().flatten()
        i, s = soft_nms(seg[idx], scores[idx], 0.0, score_threshold=0.05)
        expected.update(dict(zip(idx[i].tolist(), s.tolist())))
    assert dict(zip(keep.tolist(), new.tolist())) == pytest.approx(expected)


def test_batched_nms_many_groups_equals_per_group():
    # Many small groups: the padded [G, S, S] path (not one [N, N] problem).
    g = torch.Generator().manual_seed(0)
    n = 600
    st = torch.rand(n, generator=g) * 30
    seg = torch.stack([st, st + 0.5 + torch.rand(n, generator=g) * 5], 1)
    scores = torch.rand(n, generator=g)
    scores[::7] = 0.5  # ties
    groups = torch.randint(0, 40, (n,), generator=g) * 3
    for thr in (0.0, 0.3, 0.7):
        keep, kept_scores = batched_nms(seg, scores, groups, thr)
        expected = _per_group_nms(seg, scores, groups, thr)
        assert sorted(keep.tolist()) == sorted(expected)
        order = sorted(expected, key=lambda i: (-float(scores[i]), i))
        assert keep.tolist() == order
        assert torch.equal(kept_scores, scores[keep])


def test_batched_nms_groups_of_very_different_sizes_equals_per_group():
    # Group sizes 1..400 (several padded size groups), grid coordinates (exact tIoU ties
    # at the threshold), zero-length and duplicate segments, float32 as P-GCN's.
    g = torch.Generator().manual_seed(1)
    sizes = [1, 2, 5, 9, 40, 45, 150, 400]
    groups = torch.repeat_interleave(torch.arange(len(sizes)) * 3, torch.tensor(sizes))
    n = groups.numel()
    st = torch.randint(0, 60, (n,), generator=g).float() * 0.5
    seg = torch.stack([st, st + torch.randint(0, 8, (n,), generator=g).float() * 0.5], 1)
    seg[20:25] = seg[19]
    scores = torch.randint(0, 40, (n,), generator=g).float() / 40
    for thr in (0.0, 0.5, 0.6):
        keep, _ = batched_nms(seg, scores, groups, thr)
        expected = _per_group_nms(seg, scores, groups, thr)
        assert keep.tolist() == sorted(expected, key=lambda i: (-float(scores[i]), i))

