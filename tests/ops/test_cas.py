import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.ops import batched_nms, nms, soft_nms
from tagraph.ops.cas import (
    CASDetectionConfig,
    cas_segments,
    cas_to_detections,
    grouped_nms,
    select_classes,
    threshold_range,
)


def _loop_reference(cas, vs, lengths, pos, cfg, spacing):
    """Plain-Python version of cas_to_detections."""
    out = []
    start_node = 0
    for b, t_len in enumerate(lengths):
        c_all = cas[start_node : start_node + t_len]
        p = pos[start_node : start_node + t_len]
        classes = [c for c in range(cas.size(1)) if vs[b, c] >= cfg.class_threshold]
        if not classes and cfg.top1_fallback:
            classes = [int(vs[b].argmax())]
        for c in classes:
            cands = []
            for th in cfg.thresholds:
                t = 0
                while t < t_len:
                    if c_all[t, c] >= th:
                        s = t
                        while t < t_len and c_all[t, c] >= th:
                            t += 1
                        e = t  # exclusive
                        length = e - s
                        if length < cfg.min_length:
                            continue
                        inner = sum(float(c_all[i, c]) for i in range(s, e)) / length
                        m = math.ceil(cfg.outer_lambda * length - 1e-9)
                        outer_idx = list(range(max(0, s - m), s))
                        outer_idx += list(range(e, min(t_len, e + m)))
                        outer = (sum(float(c_all[i, c]) for i in outer_idx) / len(outer_idx)
                                 if outer_idx else 0.0)
                        score = inner - outer + cfg.gamma * float(vs[b, c])
                        cands.append((float(p[s]) - spacing / 2, float(p[e - 1]) + spacing / 2,
                                      score))
                    else:
                        t += 1
            if not cands:
                continue
            seg = torch.tensor([[a, b_] for a, b_, _ in cands], dtype=torch.float64).clamp(min=0)
            sc = torch.tensor([s for _, _, s in cands], dtype=torch.float64)
            if cfg.nms_method == "hard":
                keep = nms(seg, sc, cfg.iou_threshold)
                kept_sc = sc[keep]
            else:
                keep, kept_sc = soft_nms(seg, sc, cfg.iou_threshold, cfg.nms_method, cfg.sigma,
                                         cfg.soft_score_threshold)
            for i, s_ in zip(keep.tolist(), kept_sc.tolist()):
                out.append((b, c, round(float(seg[i, 0]), 6), round(float(seg[i, 1]), 6),
                            round(s_, 6)))
        start_node += t_len
    return sorted(out)


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    seed=st.integers(0, 10_000),
    method=st.sampled_from(["hard", "gaussian"]),
    lam=st.sampled_from([0.0, 0.25, 0.4]),
    min_length=st.sampled_from([1, 2]),
)
def test_cas_to_detections_matches_loop(lengths, seed, method, lam, min_length):
    torch.manual_seed(seed)
    c = 3
    n = sum(lengths)
    # Continuous scores: exact score ties (broken by float noise) are unlikely.
    cas = torch.rand(n, c, dtype=torch.float64)
    vs = torch.rand(len(lengths), c, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    local = torch.cat([torch.arange(t) for t in lengths]).to(torch.float64)
    spacing = 0.5  # exact binary arithmetic: tIoU ties are decided identically
    pos = local * spacing + spacing / 2
    cfg = CASDetectionConfig(
        class_threshold=0.4, thresholds=(0.3, 0.5, 0.75), outer_lambda=lam, gamma=0.2,
        nms_method=method, iou_threshold=0.5 if method == "hard" else 0.0,
        soft_score_threshold=-1e9 if method == "hard" else 0.05, min_length=min_length,
    )
    det = cas_to_detections(cas, vs, batch, pos, cfg)
    got = sorted(
        (int(b), int(l), round(float(s[0]), 6), round(float(s[1]), 6), round(float(sc), 6))
        for b, l, s, sc in zip(det.batch, det.labels, det.segments, det.scores)
    )
    ref = _loop_reference(cas, vs, lengths, pos, cfg, spacing)
    assert got == ref


def test_cas_segments_run_boundaries_split_videos():
    act = torch.tensor([[0.9], [0.9], [0.9], [0.1], [0.9]])
    batch = torch.tensor([0, 0, 1, 1, 1])
    g, c, s, e = cas_segments(act, batch, [0.5])
    # the run 0..2 is split by the video boundary at node 2
    assert g.tolist() == [0, 1, 1] and s.tolist() == [0, 2, 4] and e.tolist() == [2, 3, 5]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["hard", "gaussian", "linear"]))
def test_grouped_nms_equals_batched_nms(seed, method):
    torch.manual_seed(seed)
    n = 40
    s = torch.rand(n, dtype=torch.float64) * 10
    seg = torch.stack([s, s + torch.rand(n, dtype=torch.float64) * 3 + 0.1], -1)
    sc = torch.rand(n, dtype=torch.float64)
    groups = torch.randint(0, 4, (n,))
    kw = {} if method == "hard" else {"sigma": 0.5, "score_threshold": 0.01}
    ref_idx, ref_sc = batched_nms(seg, sc, groups, 0.4, method=method, **kw)
    idx, new_sc = grouped_nms(seg, sc, groups, 0.4, method, 0.5, 0.01)
    ref = sorted(zip(ref_idx.tolist(), [round(x, 9) for x in ref_sc.tolist()]))
    got = sorted(zip(idx.tolist(), [round(x, 9) for x in new_sc.tolist()]))
    assert got == ref


@pytest.mark.parametrize("method", ["hard", "gaussian", "linear"])
def test_grouped_nms_groups_of_very_different_sizes(method):
    # Group sizes 1..300 (several padded size groups), grid coordinates (exact tIoU
    # ties at the threshold), zero-length and duplicate segments.
    g = torch.Generator().manual_seed(7)
    sizes = [1, 2, 3, 9, 40, 41, 120, 300]
    groups = torch.repeat_interleave(torch.arange(len(sizes)) * 5, torch.tensor(sizes))
    n = groups.numel()
    s = torch.randint(0, 40, (n,), generator=g).to(torch.float64) * 0.5
    length = torch.randint(0, 8, (n,), generator=g).to(torch.float64) * 0.5
    seg = torch.stack([s, s + length], -1)
    seg[10:14] = seg[9]  # duplicates
    sc = torch.randint(0, 50, (n,), generator=g).to(torch.float64) / 50  # score ties
    kw = {} if method == "hard" else {"sigma": 0.5, "score_threshold": 0.01}
    ref_idx, ref_sc = batched_nms(seg, sc, groups, 0.5, method=method, **kw)
    idx, new_sc = grouped_nms(seg, sc, groups, 0.5, method, 0.5, 0.01)
    assert sorted(zip(idx.tolist(), new_sc.tolist())) == sorted(
        zip(ref_idx.tolist(), ref_sc.tolist()))
    # "by group, then descending score"
    gk = groups[idx]
    assert bool((gk[1:] >= gk[:-1]).all())


def test_config_and_thresholds():
    assert threshold_range(0.01, 0.2, 0.025) == (0.01, 0.035, 0.06, 0.085, 0.11, 0.135,
                                                 0.16, 0.185)
    with pytest.raises(ValueError):
        CASDetectionConfig(nms_method="soft")
    cfg = CASDetectionConfig(thresholds=[0.5], max_per_video=1, class_threshold=2.0)
    cas = torch.tensor([[0.9, 0.0], [0.1, 0.0], [0.9, 0.0]])
    det = cas_to_detections(cas, torch.tensor([[0.5, 0.1]]), torch.zeros(3, dtype=torch.long),
                            torch.tensor([0.5, 1.5, 2.5]), cfg, duration=torch.tensor([2.8]))
    # top-1 fallback keeps class 0; one detection per video
    assert det.labels.tolist() == [0] and det.segments.shape == (1, 2)
    assert float(det.segments.max()) <= 2.8


def test_extra_sources_and_background_column():
    torch.manual_seed(0)
    cas = torch.rand(40, 3, dtype=torch.float64)
    vs = torch.rand(2, 3, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([25, 15]))
    pos = torch.cat([torch.arange(25), torch.arange(15)]).double() * 0.5 + 0.25
    cfg = CASDetectionConfig(class_threshold=0.3, thresholds=(0.4, 0.6), iou_threshold=0.5)
    base = cas_to_detections(cas, vs, batch, pos, cfg)
    # the same source twice: the duplicates (tIoU 1) are suppressed -> same result
    dup = cas_to_detections(cas, vs, batch, pos, cfg, extra=[(cas, (0.4, 0.6))])
    for a, b in zip(base, dup):
        assert torch.equal(a, b)
    # one extra threshold as a separate source = that threshold in the config
    cfg3 = CASDetectionConfig(class_threshold=0.3, thresholds=(0.4, 0.6, 0.8),
                              iou_threshold=0.5)
    full = cas_to_detections(cas, vs, batch, pos, cfg3)
    split = cas_to_detections(cas, vs, batch, pos, cfg, extra=[(cas, (0.8,))])
    assert sorted(zip(full.scores.tolist(), full.labels.tolist())) == sorted(
        zip(split.scores.tolist(), split.labels.tolist()))
    # a background column is never detected
    bg_cfg = CASDetectionConfig(class_threshold=0.3, thresholds=(0.4, 0.6), iou_threshold=0.5,
                                ignore_background=True)
    with_bg = cas_to_detections(torch.cat([cas, torch.ones(40, 1, dtype=cas.dtype)], 1),
                                torch.cat([vs, torch.ones(2, 1, dtype=vs.dtype)], 1),
                                batch, pos, bg_cfg)
    for a, b in zip(base, with_bg):
        assert torch.equal(a, b)


def test_segment_minmax_matches_loop_and_is_affine_invariant():
    from tagraph.ops.cas import segment_minmax

    torch.manual_seed(0)
    batch = torch.tensor([0] * 6 + [1] * 1 + [2] * 4)
    x = torch.randn(11, 3)
    x[7:, 1] = 2.5  # a flat column of a video maps to 0
    out = segment_minmax(x, batch, 3)
    for b in range(3):
        sel = batch == b
        xs = x[sel]
        lo, hi = xs.min(0).values, xs.max(0).values
        ref = torch.where(hi > lo, (xs - lo) / (hi - lo).clamp(min=1e-12), torch.zeros_like(xs))
        assert torch.allclose(out[sel], ref)
    assert torch.allclose(segment_minmax(7.0 * x - 4.0, batch, 3), out, atol=1e-6)


def test_relative_class_selection():
    v = torch.tensor([[0.2, 0.1, 0.01], [1e-4, 3e-5, 9e-5], [0.0, 0.0, 0.0]])
    keep = select_classes(v, 0.45, top1_fallback=False, relative=True)
    assert keep.tolist() == [[True, True, False], [True, False, True], [True, True, True]]
    # scale-free: the same mask at any positive scale
    assert torch.equal(select_classes(v * 1e3, 0.45, False, True), keep)
    # absolute selection loses the weakly scored video without the top-1 fallback
    assert not select_classes(v, 0.05, top1_fallback=False)[1].any()
    assert select_classes(v, 0.05, top1_fallback=True)[1].tolist() == [True, False, False]


def test_minmax_normalized_detections_are_scale_free():
    # Thresholds relative to each video's range: the same segments for a CAS of any
    # offset and positive scale (gamma 0: the score is then scale-free too).
    torch.manual_seed(1)
    batch = torch.tensor([0] * 30 + [1] * 17)
    pos = torch.cat([torch.arange(30), torch.arange(17)]).float() * 0.5 + 0.25
    cas = torch.randn(47, 4).cumsum(0)
    video = torch.rand(2, 4)
    cfg = CASDetectionConfig(normalize="minmax", class_relative=True, class_threshold=0.3,
                             thresholds=threshold_range(0.1, 0.95, 0.1), gamma=0.0)
    ref = cas_to_detections(cas, video, batch, pos, cfg)
    assert ref.scores.numel() > 0 and set(ref.batch.tolist()) == {0, 1}
    for a, b in ((0.01, 0.3), (100.0, -50.0)):
        out = cas_to_detections(a * cas + b, video * a, batch, pos, cfg)
        assert torch.equal(out.batch, ref.batch) and torch.equal(out.labels, ref.labels)
        assert torch.allclose(out.segments, ref.segments)
        assert torch.allclose(out.scores, ref.scores, atol=1e-5)
    # without normalisation, absolute thresholds find nothing on a small-scale CAS
    raw = CASDetectionConfig(top1_fallback=False, thresholds=(0.5,), class_threshold=0.5)
    assert cas_to_detections(0.01 * cas.sigmoid(), 0.01 * video, batch, pos,
                             raw).scores.numel() == 0
    with pytest.raises(ValueError, match="normalize"):
        CASDetectionConfig(normalize="zscore")
