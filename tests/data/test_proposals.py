import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.data import actionness_grouping, sliding_window_proposals


def times(t):
    return (torch.arange(t, dtype=torch.float64) * 4 + 8) / 25


def ref_grouping(a, thresholds, gaps, min_snippets):
    """Plain loop over snippets: runs above each threshold, merged over gaps."""
    regions = set()
    t = len(a)
    for thr in thresholds:
        runs, u = [], 0
        while u < t:
            if a[u] > thr:
                v = u
                while v < t and a[v] > thr:
                    v += 1
                runs.append([u, v])
                u = v
            else:
                u += 1
        for g in gaps:
            merged = []
            for r in runs:
                if merged and r[0] - merged[-1][1] <= g:
                    merged[-1][1] = r[1]
                else:
                    merged.append(list(r))
            regions |= {tuple(r) for r in merged if r[1] - r[0] >= min_snippets}
    scored = [(sum(a[s:e]) / (e - s), s, e) for s, e in regions]
    return scored


@settings(max_examples=60, deadline=None)
@given(a=st.lists(st.sampled_from([0.0, 0.15, 0.35, 0.55, 0.75, 0.95]), max_size=60),
       gaps=st.sampled_from([(0,), (0, 1, 2), (3,)]), min_snippets=st.integers(1, 3))
def test_grouping_matches_loop(a, gaps, min_snippets):
    thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
    act = torch.tensor(a, dtype=torch.float64)
    t = times(len(a))
    seg, score = actionness_grouping(act, t, thresholds, gaps, min_snippets=min_snippets)
    ref = ref_grouping(a, thresholds, gaps, min_snippets)
    assert seg.size(0) == len(ref) == score.size(0)
    assert bool((score[1:] <= score[:-1]).all())
    half = 0.08 if len(a) > 1 else 0.32  # half the spacing; one snippet: window / 2
    end = float(t[-1]) + 0.32 if len(a) else 0.0
    got = sorted((round(float(sc), 9), round(float(s), 6), round(float(e), 6))
                 for sc, (s, e) in zip(score, seg.tolist()))
    exp = sorted((round(sc, 9), round(max(float(t[s]) - half, 0.0), 6),
                  round(min(float(t[e - 1]) + half, end), 6)) for sc, s, e in ref)
    assert got == exp


def test_grouping_nms_and_cap():
    a = torch.tensor([0.0, 0.9, 0.95, 0.2, 0.9, 0.0, 0.0, 0.6, 0.6, 0.0])
    seg, score = actionness_grouping(a, times(10), max_gaps=(0, 1))
    assert seg.size(0) > 3
    seg2, score2 = actionness_grouping(a, times(10), max_gaps=(0, 1), nms_iou=0.3,
                                       max_proposals=2)
    assert seg2.size(0) == 2 and float(score2[0]) == float(score[0])
    from tagraph.ops import segment_iou

    assert float(segment_iou(seg2[:1], seg2[1:])) <= 0.3


def test_grouping_bad_input():
    with pytest.raises(ValueError, match="'actionness'"):
        actionness_grouping(torch.tensor([0.1, float("nan")]), times(2))
    with pytest.raises(ValueError, match="'actionness'"):
        actionness_grouping(torch.rand(3), times(4))
    seg, score = actionness_grouping(torch.zeros(0), times(0))
    assert seg.shape == (0, 2) and score.shape == (0,)


@settings(max_examples=40, deadline=None)
@given(duration=st.floats(0.5, 300), overlap=st.sampled_from([0.0, 0.5, 0.75]),
       cover_end=st.booleans())
def test_sliding_windows_match_loop(duration, overlap, cover_end):
    scales = (1.0, 3.0, 16.0, 64.0)
    seg = sliding_window_proposals(duration, scales, overlap, cover_end=cover_end)
    ref = []
    for w in scales:
        if w > duration:
            continue
        k = 0
        while k * w * (1 - overlap) + w <= duration + 1e-9:
            ref.append((k * w * (1 - overlap), k * w * (1 - overlap) + w))
            k += 1
        if cover_end and ref[-1][1] < duration - 1e-6:
            ref.append((duration - w, duration))
    assert seg.shape == (len(ref), 2)
    torch.testing.assert_close(seg, torch.tensor(ref, dtype=seg.dtype).view(-1, 2))
    assert bool((seg[:, 0] >= -1e-6).all() and (seg[:, 1] <= duration + 1e-5).all())


def test_sliding_windows_from_snippet_times():
    t = times(100)  # 0.32 .. 16.16 s, video end 16.48 s
    seg = sliding_window_proposals(t, (2.0,), 0.5)
    assert abs(float(seg[-1, 1]) - (float(t[-1]) + 0.32)) < 1e-5
    with pytest.raises(ValueError, match="'overlap'"):
        sliding_window_proposals(10.0, (1.0,), 1.0)
