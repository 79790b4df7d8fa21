import math
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.data import knn_edges, snippet_graph


def times(t):
    return (torch.arange(t, dtype=torch.float32) * 4 + 8) / 25


def ref_edges(x, offsets, knn, exclude_temporal):
    """Brute force: dense T x T cosine matrix and plain loops."""
    t = x.size(0)
    xn = torch.nn.functional.normalize(x, dim=1)
    sim = (xn @ xn.T).tolist()
    out = []
    excl = set(offsets) | {0} if exclude_temporal else {0}
    n_avail = min(sum(1 for u in range(t) if u - v not in excl) for v in range(t)) if t else 0
    kk = min(knn, n_avail)
    for v in range(t):
        for m, k in enumerate(offsets):
            if 0 <= v + k < t:
                out.append((v + k, v, m, max(sim[v + k][v], 0.0)))
        if knn:
            cand = [u for u in range(t) if u - v not in excl]
            cand.sort(key=lambda u: (-sim[v][u], u))
            out += [(u, v, len(offsets), max(sim[v][u], 0.0)) for u in cand[:kk]]
    return out


def check(data, ref):
    got = list(zip(data.edge_index[0].tolist(), data.edge_index[1].tolist(),
                   data.edge_type.tolist()))
    assert got == [r[:3] for r in ref]
    w = torch.tensor([r[3] for r in ref], dtype=data.edge_weight.dtype)
    torch.testing.assert_close(data.edge_weight, w, atol=1e-6, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(t=st.integers(0, 40), d=st.integers(1, 6), knn=st.integers(0, 6),
       offsets=st.sampled_from([(-1, 1), (), (1,), (-2, -1, 0, 1, 2), (3, -5)]),
       excl=st.booleans(), seed=st.integers(0, 1000), integer=st.booleans())
def test_matches_bruteforce(t, d, knn, offsets, excl, seed, integer):
    g = torch.Generator().manual_seed(seed)
    if integer:  # signed one-hot rows (and zero rows): exact similarities, many ties
        hot = torch.nn.functional.one_hot(torch.randint(0, d, (t,), generator=g), d).float()
        x = hot * torch.randint(-1, 2, (t, 1), generator=g).float()
    else:
        x = torch.randn(t, d, generator=g)
    data = snippet_graph(x, times(t), temporal_offsets=offsets, knn=knn,
                         knn_exclude_temporal=excl)
    check(data, ref_edges(x, offsets, knn, excl))
    assert torch.equal(data.x, x) and torch.equal(data.pos, times(t))


@settings(max_examples=80, deadline=None)
@given(t=st.integers(1, 70), d=st.integers(1, 5), knn=st.integers(1, 6),
       offsets=st.sampled_from([(-1, 1), (1,), (3, -5)]), block=st.sampled_from([9, 64, 256]),
       cap=st.sampled_from([4, 8, 64, 10**9]), seed=st.integers(0, 1000), integer=st.booleans())
def test_pruned_blocked_knn_matches_bruteforce(t, d, knn, offsets, block, cap, seed, integer):
    """Many small blocks: the threshold-pruned merges (hits padded, heavy rows
    and whole blocks by top-k) against the dense loop reference, with ties."""
    sg = sys.modules["tagraph.data.snippet_graph"]  # the module (the package exports
    # a function of the same name)
    g = torch.Generator().manual_seed(seed)
    if integer:
        hot = torch.nn.functional.one_hot(torch.randint(0, d, (t,), generator=g), d).float()
        x = hot * torch.randint(-1, 2, (t, 1), generator=g).float()
    else:
        x = torch.randn(t, d, generator=g)
    old = sg._KNN_PRUNE_HITS
    sg._KNN_PRUNE_HITS = cap
    try:
        ei, val = knn_edges(x, knn, offsets, block_entries=block)
    finally:
        sg._KNN_PRUNE_HITS = old
    ref = [r for r in ref_edges(x, offsets, knn, True) if r[2] == len(offsets)]
    assert list(zip(ei[0].tolist(), ei[1].tolist())) == [r[:2] for r in ref]
    xn = torch.nn.functional.normalize(x, dim=1)
    torch.testing.assert_close(val, (xn[ei[0]] * xn[ei[1]]).sum(1), atol=1e-6, rtol=1e-5)


def test_pruned_knn_heavy_and_padded_rows():
    """Two blocks of 16 (hit cap 8). After the diagonal blocks, rows 0-14
    (e1) keep threshold 1 and row 15 (e2) threshold 0. In the off-diagonal
    block, rows 0-14 then meet one hit (row 31 = e1: padded merge) and row 15
    ties with every column (0 >= 0: more than the cap, its own top-k); on the
    columns' (transposed) side, row 31, whose block-1 neighbours are all -1,
    takes every block-0 column likewise."""
    sg = sys.modules["tagraph.data.snippet_graph"]
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    x = torch.stack([e1] * 15 + [e2] + [-e1] * 15 + [e1])
    calls = []
    block_topk, old = sg._block_topk, sg._KNN_PRUNE_HITS
    sg._KNN_PRUNE_HITS = 8
    sg._block_topk = lambda sim, k, col0: calls.append(sim.size(0)) or block_topk(sim, k, col0)
    try:
        ei, val = knn_edges(x, 3, (-1, 1), block_entries=256)
    finally:
        sg._KNN_PRUNE_HITS, sg._block_topk = old, block_topk
    ref = [r for r in ref_edges(x, (-1, 1), 3, True) if r[2] == 2]
    assert list(zip(ei[0].tolist(), ei[1].tolist())) == [r[:2] for r in ref]
    assert calls == [16, 16, 1, 1]  # the diagonal blocks, then rows 15 and 31 alone
    assert ei[0][ei[1] == 0].tolist() == [2, 3, 4]  # ties to the lower index
    assert ei[0][ei[1] == 15].tolist() == [0, 1, 2]


def test_blocked_knn_equals_single_block():
    x = torch.randn(150, 16)
    full = knn_edges(x, 7, (-1, 1), block_entries=10**9)
    for block in (1000, 4321):  # blocks of 31 and 65 rows
        part = knn_edges(x, 7, (-1, 1), block_entries=block)
        assert torch.equal(part[0], full[0])
        torch.testing.assert_close(part[1], full[1])


def test_weight_none_and_edge_semantics():
    x = torch.randn(6, 3)
    data = snippet_graph(x, times(6), temporal_offsets=(-1, 2), weight=None)
    assert torch.equal(data.edge_weight, torch.ones(data.edge_index.size(1)))
    src, dst = data.edge_index
    # node t receives from t + k for the k of its edge type
    k = torch.tensor([-1, 2])[data.edge_type]
    assert torch.equal(src, dst + k)


def test_empty_video():
    data = snippet_graph(torch.zeros(0, 4), torch.zeros(0), knn=3)
    assert data.edge_index.shape == (2, 0) and data.x.shape == (0, 4)


@pytest.mark.parametrize("kwargs,field", [
    (dict(features=torch.tensor([[math.nan]] * 5)), "'features'"),
    (dict(features=torch.zeros(5)), "'features'"),
    (dict(snippet_times=times(4)), "'snippet_times'"),
    (dict(temporal_offsets=(1, 1)), "'temporal_offsets'"),
    (dict(knn=-1), "'knn'"),
    (dict(weight="cos"), "'weight'"),
    (dict(knn=2, knn_method="faiss"), "'knn_method'"),
    (dict(knn=2, knn_method="approx", knn_candidates=0), "'knn_candidates'"),
])
def test_bad_input(kwargs, field):
    args = dict(features=torch.randn(5, 1), snippet_times=times(5))
    args.update(kwargs)
    f, t = args.pop("features"), args.pop("snippet_times")
    with pytest.raises(ValueError, match=field) as err:
        snippet_graph(f, t, video_id="v1", **args)
    assert "video 'v1'" in str(err.value)


# ----------------------------------------------------------------------------
# approximate kNN (random projection + inverted file + exact re-ranking)
# ----------------------------------------------------------------------------
def as_pairs(edge_index):
    return set(zip(edge_index[0].tolist(), edge_index[1].tolist()))


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 60), d=st.sampled_from([3, 16, 100]), knn=st.integers(1, 6),
       offsets=st.sampled_from([(-1, 1), (), (-2, -1, 1, 2)]), excl=st.booleans(),
       seed=st.integers(0, 1000))
def test_approx_covering_all_nodes_equals_exact(t, d, knn, offsets, excl, seed):
    # candidates >= T: every node is a candidate, so the search is exhaustive
    x = torch.randn(t, d, generator=torch.Generator().manual_seed(seed))
    exact = snippet_graph(x, times(t), temporal_offsets=offsets, knn=knn,
                          knn_exclude_temporal=excl)
    approx = snippet_graph(x, times(t), temporal_offsets=offsets, knn=knn,
                           knn_exclude_temporal=excl, knn_method="approx", knn_candidates=t)
    assert torch.equal(approx.edge_index, exact.edge_index)
    assert torch.equal(approx.edge_type, exact.edge_type)
    torch.testing.assert_close(approx.edge_weight, exact.edge_weight, atol=1e-6, rtol=1e-5)


def grouped_features(groups=120, size=11, d=256, noise=0.05, seed=0):
    """Groups of near-duplicate snippets scattered over the video: each
    snippet's 10 true neighbours are the rest of its group."""
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(groups).repeat_interleave(size)[torch.randperm(groups * size, generator=g)]
    x = torch.randn(groups, d, generator=g)[label] + noise * torch.randn(groups * size, d,
                                                                         generator=g)
    return x, label


@pytest.mark.parametrize("d", [24, 256])  # without / with the random projection
def test_approx_recall_on_structured_features(d):
    x, label = grouped_features(d=d)
    t = x.size(0)
    exact, _ = knn_edges(x, 10, (-1, 1))
    ei, sim = knn_edges(x, 10, (-1, 1), method="approx")
    assert ei.shape == exact.shape
    recall = len(as_pairs(ei) & as_pairs(exact)) / exact.size(1)
    assert recall >= 0.97
    # similarities are exact, sorted per node, never self or a temporal neighbour
    xn = torch.nn.functional.normalize(x, dim=1)
    torch.testing.assert_close(sim, (xn[ei[0]] * xn[ei[1]]).sum(1), atol=1e-5, rtol=1e-5)
    assert torch.equal(ei[1], torch.arange(t).repeat_interleave(10))
    assert bool((sim.view(t, 10)[:, 1:] <= sim.view(t, 10)[:, :-1]).all())
    assert not bool(((ei[0] - ei[1]).abs() <= 1).any())
    # deterministic (seeded projection and k-means)
    again = knn_edges(x, 10, (-1, 1), method="approx")
    assert torch.equal(again[0], ei) and torch.equal(again[1], sim)


def test_approx_snippet_graph_format():
    x, _ = grouped_features(groups=30, d=64)
    t = x.size(0)
    data = snippet_graph(x, times(t), knn=5, knn_method="approx", knn_candidates=8)
    exact = snippet_graph(x, times(t), knn=5)
    assert data.edge_index.shape == exact.edge_index.shape
    assert torch.equal(data.edge_type, exact.edge_type)  # 0, 1 temporal; 2 kNN
    kn = data.edge_type == 2
    src, dst = data.edge_index[:, kn]
    xn = torch.nn.functional.normalize(x, dim=1)
    w = (xn[src] * xn[dst]).sum(1).clamp_min(0)
    torch.testing.assert_close(data.edge_weight[kn], w, atol=1e-5, rtol=1e-5)
    temporal = ~kn
    torch.testing.assert_close(data.edge_weight[temporal], exact.edge_weight[temporal])
