import math

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
])
def test_bad_input(kwargs, field):
    args = dict(features=torch.randn(5, 1), snippet_times=times(5))
    args.update(kwargs)
    f, t = args.pop("features"), args.pop("snippet_times")
    with pytest.raises(ValueError, match=field) as err:
        snippet_graph(f, t, video_id="v1", **args)
    assert "video 'v1'" in str(err.value)
