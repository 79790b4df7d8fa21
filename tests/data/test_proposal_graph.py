import importlib
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.data import proposal_edges, proposal_graph, snippet_ranges
from tagraph.data.proposal_graph import segment_center_distance
from tagraph.ops import segment_iou

pg = importlib.import_module("tagraph.data.proposal_graph")

FPS, STRIDE, WINDOW = 25.0, 4, 16


def times(t):
    return (torch.arange(t, dtype=torch.float32) * STRIDE + WINDOW / 2) / FPS


# ----------------------------------------------------------------------------
# brute-force O(N^2) references (plain loops, for clarity)
# ----------------------------------------------------------------------------
def ref_edges(seg, thr_c=0.7, k_c=8, thr_s=1.0, k_s=2):
    n = seg.size(0)
    # tIoU > thr is decided in the segments' dtype (torch casts a Python scalar
    # to the tensor's dtype): an IoU of exactly 0.3 rounds to float32(0.3), so
    # it is not > 0.3, as in exact arithmetic
    thr_c = float(torch.tensor(thr_c, dtype=seg.dtype))
    iou = segment_iou(seg, seg).tolist()
    d = segment_center_distance(seg[:, None, :], seg[None, :, :]).tolist()
    out = []
    for i in range(n):
        ctx = [j for j in range(n) if j != i and iou[i][j] > thr_c]
        ctx.sort(key=lambda j: (-iou[i][j], j))
        sur = [j for j in range(n) if iou[i][j] == 0 and d[i][j] < thr_s]
        sur.sort(key=lambda j: (d[i][j], j))
        out += [(j, i, 0) for j in ctx[:k_c]] + [(j, i, 1) for j in sur[:k_s]]
    return out


def ref_snippets(t, s, e):
    idx = torch.nonzero((t >= s) & (t <= e)).flatten()
    if idx.numel() == 0:  # nearest snippet to the centre, the earlier on ties
        dist = (t - (s + e) * 0.5).abs()
        idx = torch.nonzero(dist == dist.min()).flatten()[:1]
    return idx


def ref_features(f, t, seg, ratio=0.5, hi=None, pooling="max"):
    hi = float(t[-1] + t[0]) if hi is None else hi
    red = (lambda z: z.max(0).values) if pooling == "max" else (lambda z: z.mean(0))
    xs, xe = [], []
    for s, e in seg.tolist():
        L = e - s
        parts = []
        start_ctx = (min(max(s - ratio * L, 0.0), s), s)
        end_ctx = (e, max(min(e + ratio * L, hi), e))
        for a, b in (start_ctx, (s, e), end_ctx):
            parts.append(red(f[ref_snippets(t, a, b)]))
        xs.append(parts[1])
        xe.append(torch.cat(parts))
    d = f.size(1)
    return (torch.stack(xs) if xs else f.new_zeros(0, d),
            torch.stack(xe) if xe else f.new_zeros(0, 3 * d))


def as_set(edge_index, edge_type):
    return list(zip(edge_index[0].tolist(), edge_index[1].tolist(), edge_type.tolist()))


# grid-valued segments: exact ties in tIoU and distance, identical proposals
grid_segments = st.lists(
    st.tuples(st.integers(0, 80), st.integers(1, 32)), min_size=0, max_size=50
).map(lambda v: torch.tensor([[a * 0.25, (a + b) * 0.25] for a, b in v],
                             dtype=torch.float32).view(-1, 2))


@settings(max_examples=60, deadline=None)
@given(seg=grid_segments, thr_c=st.sampled_from([0.0, 0.3, 0.7, 0.9]),
       k_c=st.integers(0, 5), thr_s=st.sampled_from([0.5, 0.6, 0.75, 1.0, 2.0]),
       k_s=st.integers(0, 4))
def test_edges_match_bruteforce_grid(seg, thr_c, k_c, thr_s, k_s):
    ei, et = proposal_edges(seg, contextual_iou=thr_c, max_contextual=k_c,
                            surrounding_distance=thr_s, max_surrounding=k_s)
    assert as_set(ei, et) == ref_edges(seg, thr_c, k_c, thr_s, k_s)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 120), log_span=st.floats(0.0, 4.0),
       origin=st.sampled_from([0.0, 3000.0]))
def test_edges_match_bruteforce_multiscale(seed, n, log_span, origin):
    g = torch.Generator().manual_seed(seed)
    length = 10 ** (torch.rand(n, generator=g, dtype=torch.float64) * log_span - 1)
    start = origin + torch.rand(n, generator=g, dtype=torch.float64) * 100
    seg = torch.stack([start, start + length], 1)
    if n > 3:  # a few exact duplicates
        seg[n // 2] = seg[0]
    ei, et = proposal_edges(seg)
    assert as_set(ei, et) == ref_edges(seg)
    ei, et = proposal_edges(seg.float(), contextual_iou=0.5, max_contextual=3, max_surrounding=3)
    assert as_set(ei, et) == ref_edges(seg.float(), 0.5, 3, 1.0, 3)


@pytest.mark.parametrize("base", [2, 3, 4, 16])
def test_edges_bucket_base_and_span_past_the_last_bucket(monkeypatch, base):
    """Lengths over 9 decades: more than _NUM_BUCKETS buckets of any base here,
    so the shortest share the last one; the edges never depend on the base."""
    monkeypatch.setattr(pg, "_BUCKET_BASE", base)
    g = torch.Generator().manual_seed(base)
    n = 150
    length = 10 ** (torch.rand(n, generator=g, dtype=torch.float64) * 9 - 6)
    start = torch.rand(n, generator=g, dtype=torch.float64) * 100
    seg = torch.stack([start, start + length], 1)
    level = torch.floor(torch.log2(length / length.max()) / math.log2(base))
    assert int(level.min()) < -(pg._NUM_BUCKETS - 1) or base == 16
    ei, et = proposal_edges(seg)
    assert as_set(ei, et) == ref_edges(seg)


def test_edges_chunked(monkeypatch):
    g = torch.Generator().manual_seed(0)
    n = 400
    start = torch.rand(n, generator=g) * 60
    seg = torch.stack([start, start + torch.rand(n, generator=g) * 8 + 0.1], 1)
    expected = proposal_edges(seg)
    monkeypatch.setattr(pg, "_CHUNK_PAIRS", 97)
    ei, et = proposal_edges(seg)
    assert torch.equal(ei, expected[0]) and torch.equal(et, expected[1])
    assert as_set(ei, et) == ref_edges(seg)


def test_contextual_threshold_in_segment_dtype():
    # 1.5 / 5 = 0.3 exactly; float32 division rounds it up to float32(0.3),
    # which must not count as > 0.3
    seg = torch.tensor([[0.0, 1.5], [0.0, 5.0]])
    ei, _ = proposal_edges(seg, contextual_iou=0.3, max_surrounding=0)
    assert ei.size(1) == 0
    ei, _ = proposal_edges(seg, contextual_iou=0.29, max_surrounding=0)
    assert ei.size(1) == 2


def test_surrounding_prefers_long_far_proposal():
    # d = (1 + g / (L_i + L_j + g)) / 2: a long proposal 9 s away is "nearer"
    # to [0, 1] than a short one 0.5 s away
    seg = torch.tensor([[0.0, 1.0], [1.5, 2.0], [10.0, 1000.0]])
    ei, et = proposal_edges(seg, max_surrounding=1)
    into0 = ei[0][(ei[1] == 0) & (et == 1)].tolist()
    assert into0 == [2]
    d = segment_center_distance(seg[:, None], seg[None])
    off = ~torch.eye(3, dtype=torch.bool)
    assert bool(((d[off] >= 0.5) & (d[off] < 1)).all())


def test_identical_and_tied_proposals():
    seg = torch.tensor([[1.0, 3.0]] * 4 + [[3.0, 5.0], [-0.0, 1.0], [5.0, 7.0]])
    ei, et = proposal_edges(seg, max_contextual=2, max_surrounding=2)
    e = as_set(ei, et)
    assert e == ref_edges(seg, 0.7, 2, 1.0, 2)
    # node 0's contextual neighbours: the identical 1, 2 (lower index first)
    assert [s for s, d, t in e if d == 0 and t == 0] == [1, 2]
    # node 0's surrounding: touching [3, 5] (index 4) and [0, 1] (index 5), d = 1/2
    assert [s for s, d, t in e if d == 0 and t == 1] == [4, 5]
    assert all(s != d for s, d, _ in e)


# ----------------------------------------------------------------------------
# features and targets
# ----------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seg=grid_segments, ratio=st.sampled_from([0.0, 0.5, 1.0]),
       pooling=st.sampled_from(["max", "mean"]))
def test_features_match_bruteforce(seg, ratio, pooling):
    seg = seg * 0.9  # within [0, 28 * 0.9]; some shorter than a snippet
    t = times(160)
    f = torch.randn(160, 5, generator=torch.Generator().manual_seed(seg.numel()))
    data = proposal_graph(f, t, seg, context_ratio=ratio, pooling=pooling)
    x, x_ext = ref_features(f, t, seg, ratio, pooling=pooling)
    assert data.x.shape == (seg.size(0), 5) and data.x_ext.shape == (seg.size(0), 15)
    torch.testing.assert_close(data.x, x)
    torch.testing.assert_close(data.x_ext, x_ext)
    assert torch.equal(data.x_ext[:, 5:10], data.x)
    ei = data.edge_index
    assert as_set(ei, data.edge_type) == ref_edges(seg)
    xn = torch.nn.functional.normalize(x, dim=1)
    w = (xn @ xn.T).clamp_min(0)[ei[1], ei[0]]
    torch.testing.assert_close(data.edge_weight, w, atol=1e-6, rtol=1e-5)


def test_x_is_a_view_of_the_body(tmp_path):
    seg = torch.tensor([[1.0, 4.0], [2.0, 9.0], [12.0, 15.0]])
    f = torch.randn(160, 4, generator=torch.Generator().manual_seed(0))
    data = proposal_graph(f, times(160), seg)
    assert data.x.data_ptr() == data.x_ext[:, 4:8].data_ptr()
    assert data.x.untyped_storage().data_ptr() == data.x_ext.untyped_storage().data_ptr()
    # saved once, and shared again after loading
    torch.save(data.to_dict(), tmp_path / "g.pt")
    back = torch.load(tmp_path / "g.pt")
    assert torch.equal(back["x"], data.x)
    assert back["x"].untyped_storage().data_ptr() == back["x_ext"].untyped_storage().data_ptr()
    # layers accept the strided view like a contiguous tensor
    lin = torch.nn.Linear(4, 3)
    torch.testing.assert_close(lin(data.x), lin(data.x.contiguous()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "row_block", "duplicates"])
def test_cosine_edge_weight_paths(dtype, layout):
    # SDDMM path (distinct edges, float32/64) and gathered-rows fallback
    # (repeated edges, other dtypes) against the dense cosine matrix
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 24, generator=g, dtype=torch.float64)
    x[7] = 0  # zero vector: weight 0
    src = torch.randint(0, 40, (300,), generator=g)
    dst = torch.randint(0, 40, (300,), generator=g)
    key = torch.unique(dst * 40 + src)
    ei = torch.stack([key % 40, key // 40])[:, torch.randperm(key.numel(), generator=g)]
    if layout == "duplicates":
        ei = torch.cat([ei, ei[:, :9]], 1)
    xd = x.to(dtype)
    if layout == "strided":
        xd = torch.cat([xd, xd], 1)[:, ::2]
    if layout == "row_block":  # the body columns of an x_ext-like [N, 3D] matrix
        xd = torch.cat([torch.randn_like(xd), xd, torch.randn_like(xd)], 1)[:, 24:48]
        assert xd.stride() == (72, 1)
    w = pg.cosine_edge_weight(xd, ei)
    xn = torch.nn.functional.normalize(xd.double(), dim=1)
    ref = (xn @ xn.T).clamp_min(0)[ei[1], ei[0]]
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-6
    assert w.dtype == dtype and w.shape == (ei.size(1),)
    torch.testing.assert_close(w.double(), ref, atol=tol, rtol=tol)
    assert pg.cosine_edge_weight(xd, ei[:, :0]).shape == (0,)


def test_short_proposal_takes_nearest_snippet():
    t = times(10)  # 0.32, 0.48, 0.64, ...
    f = torch.arange(10, dtype=torch.float32)[:, None]
    seg = torch.tensor([[0.50, 0.52], [0.55, 0.57], [0.0, 0.1]])
    start, end = snippet_ranges(t, seg)
    assert (end - start).tolist() == [1, 1, 1]
    assert start.tolist() == [1, 2, 0]
    data = proposal_graph(f, t, seg)
    assert data.x.flatten().tolist() == [1.0, 2.0, 0.0]


def test_targets():
    f = torch.randn(200, 4)
    t = times(200)
    gt = torch.tensor([[2.0, 6.0], [10.0, 12.0], [10.5, 12.5]])
    labels = torch.tensor([4, 0, 7])
    seg = torch.tensor([[2.0, 6.0], [2.5, 6.5], [10.0, 12.5], [20.0, 22.0], [5.0, 6.0],
                        [1.0, 7.0]])
    data = proposal_graph(f, t, seg, gt_segments=gt, gt_labels=labels, fg_iou=0.7)
    iou = segment_iou(seg, gt)
    best_iou, best = iou.max(1)
    torch.testing.assert_close(data.iou, best_iou)
    # [10, 12.5] ties between gt 1 (iou 0.8) and gt 2 (iou 0.8): lower index wins
    assert int(best[2]) == 1 and data.matched_label[2] == 1
    assert data.y.tolist() == [5, 5, 1, 0, 0, 0]
    assert data.matched_label.tolist() == [5, 5, 1, 0, 5, 5]
    torch.testing.assert_close(data.overlap_self[[0, 4, 5]], torch.tensor([1.0, 1.0, 4 / 6]))
    g = gt[best]
    c, L = seg.mean(1), seg[:, 1] - seg[:, 0]
    reg = torch.stack([(g.mean(1) - c) / L, torch.log((g[:, 1] - g[:, 0]) / L)], 1)
    reg[3] = 0
    torch.testing.assert_close(data.reg_target, reg)
    assert torch.equal(data.gt_labels, labels)


def test_targets_without_annotations():
    data = proposal_graph(torch.randn(50, 3), times(50), torch.tensor([[1.0, 2.0]]),
                          gt_segments=torch.zeros(0, 2), gt_labels=torch.zeros(0, dtype=torch.long))
    assert data.y.tolist() == [0] and data.iou.tolist() == [0.0]
    assert data.reg_target.shape == (1, 2)


def test_empty_proposals():
    data = proposal_graph(torch.randn(50, 3), times(50), torch.zeros(0, 2),
                          gt_segments=torch.tensor([[1.0, 2.0]]), gt_labels=torch.tensor([1]))
    assert data.x.shape == (0, 3) and data.x_ext.shape == (0, 9)
    assert data.edge_index.shape == (2, 0) and data.edge_weight.shape == (0,)
    assert data.y.shape == (0,) and data.reg_target.shape == (0, 2)
    assert data.num_nodes == 0
    data.validate()


def test_single_proposal_and_single_snippet():
    data = proposal_graph(torch.ones(1, 3), times(1), torch.tensor([[0.0, 0.64]]))
    assert data.edge_index.shape == (2, 0)
    assert torch.equal(data.x_ext, torch.ones(1, 9))


@pytest.mark.parametrize("kwargs,field", [
    (dict(features=torch.tensor([[math.nan, 0.0]] * 10)), "'features'"),
    (dict(features=torch.tensor([[math.inf, 0.0]] * 10)), "'features'"),
    (dict(features=torch.zeros(10)), "'features'"),
    (dict(snippet_times=times(9)), "'snippet_times'"),
    (dict(snippet_times=times(10).flip(0)), "'snippet_times'"),
    (dict(segments=torch.tensor([[2.0, 1.0]])), "'segments'"),
    (dict(segments=torch.tensor([[1.0, 1.0]])), "'segments'"),
    (dict(segments=torch.tensor([[1.0, 2.0, 3.0]])), "'segments'"),
    (dict(segments=torch.tensor([[1.0, math.nan]])), "'segments'"),
    (dict(segments=torch.tensor([[1.0, 30.0]])), "outside the video"),
    (dict(segments=torch.tensor([[-5.0, 1.0]])), "outside the video"),
    (dict(gt_segments=torch.tensor([[2.0, 1.0]])), "'gt_segments'"),
    (dict(gt_segments=torch.tensor([[1.0, 2.0]]), gt_labels=torch.tensor([1, 2])), "'gt_labels'"),
    (dict(gt_segments=torch.tensor([[1.0, 2.0]]), gt_labels=torch.tensor([-1])), "'gt_labels'"),
    (dict(pooling="avg"), "'pooling'"),
    (dict(contextual_iou=1.0), "'contextual_iou'"),
])
def test_bad_input(kwargs, field):
    args = dict(features=torch.randn(10, 2), snippet_times=times(10),
                segments=torch.tensor([[0.5, 1.0]]))
    args.update(kwargs)
    f, t, s = args.pop("features"), args.pop("snippet_times"), args.pop("segments")
    with pytest.raises(ValueError, match=field) as err:
        proposal_graph(f, t, s, video_id="video_test_0000004", **args)
    assert "video_test_0000004" in str(err.value)


def test_huge_finite_features_are_valid():
    # the finite check sums first: an overflowing sum of finite values must not be
    # mistaken for NaN / Inf (the element-wise test decides)
    f = torch.full((10, 2), 3e38)
    assert not torch.isfinite(f.sum())
    data = proposal_graph(f, times(10), torch.tensor([[0.5, 1.0]]))
    assert torch.isfinite(data.x).all()
    f[4, 1] = -math.inf
    with pytest.raises(ValueError, match="NaN or Inf.*first row 4"):
        proposal_graph(f, times(10), torch.tensor([[0.5, 1.0]]))


def test_proposal_edges_rejects_empty_segments():
    with pytest.raises(ValueError, match="'segments'"):
        proposal_edges(torch.tensor([[1.0, 1.0], [0.0, 2.0]]))


def test_duration_bounds_segments():
    f, t = torch.randn(10, 2), times(10)  # covers ~[0, 1.92] s
    proposal_graph(f, t, torch.tensor([[0.0, 5.0]]), duration=5.0)
    with pytest.raises(ValueError, match="outside the video"):
        proposal_graph(f, t, torch.tensor([[0.0, 5.0]]))


def test_no_dense_matrix(monkeypatch):
    # the fast path never builds an N x N IoU matrix: forbid segment_iou with two
    # large inputs (it is only used for the N x M ground-truth matching)
    real = pg.segment_iou

    def guarded(a, b):
        assert min(a.size(0), b.size(0)) < 100, "dense N x N matrix"
        return real(a, b)

    monkeypatch.setattr(pg, "segment_iou", guarded)
    n = 3000
    start = torch.rand(n) * 200
    seg = torch.stack([start, start + torch.rand(n) * 20 + 0.1], 1).clamp(max=220)
    data = proposal_graph(torch.randn(1400, 4), times(1400), seg,
                          gt_segments=torch.tensor([[1.0, 2.0]]), gt_labels=torch.tensor([0]))
    assert data.edge_index.size(1) <= n * 10
    deg = torch.bincount(data.edge_index[1], minlength=n)
    assert int(deg.max()) <= 10
