import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from tagraph.loader import (
    UniformNeighborSampler,
    has_native_sampler,
    proposal_neighbor_loader,
    sample_neighbors,
)
from tagraph.nn import PGCNConv


def random_graph(seed, n=40, e=200, d=3):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    return Data(x=torch.randn(n, d, generator=g), edge_index=ei,
                edge_weight=torch.rand(e, generator=g), num_nodes=n)


def colptr_of(data):
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    return torch.cat([deg.new_zeros(1), deg.cumsum(0)]), deg


def check_structure(data, batch, k_list, seeds, replace=False):
    n_id, e_id = batch.n_id, batch.e_id
    bs = batch.batch_size
    assert torch.equal(n_id[:bs], seeds)
    if seeds.unique().numel() == seeds.numel():
        assert n_id.unique().numel() == n_id.numel()
    # Edges map back to the input graph and attributes follow them.
    assert torch.equal(data.edge_index[:, e_id], n_id[batch.edge_index])
    assert torch.equal(batch.edge_weight, data.edge_weight[e_id])
    assert torch.equal(batch.x, data.x[n_id])
    assert sum(batch.num_sampled_nodes) == n_id.numel()
    assert sum(batch.num_sampled_edges) == e_id.numel()
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    lo_n, lo_e = 0, 0
    for hop, k in enumerate(k_list):
        hi_n = lo_n + batch.num_sampled_nodes[hop]
        hi_e = lo_e + batch.num_sampled_edges[hop]
        col = batch.edge_index[1, lo_e:hi_e]
        assert ((col >= lo_n) & (col < hi_n)).all()  # targets: this hop's frontier
        cnt = torch.bincount(col - lo_n, minlength=hi_n - lo_n)
        d = deg[n_id[lo_n:hi_n]]
        if k < 0:
            expect = d
        elif replace:
            expect = torch.where(d > 0, k, 0)
        else:
            expect = d.clamp(max=k)
        assert torch.equal(cnt, expect)
        if not replace:  # distinct edges per target
            pairs = col * (data.num_edges + 1) + e_id[lo_e:hi_e]
            assert pairs.unique().numel() == pairs.numel()
        lo_n, lo_e = hi_n, hi_e


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), k1=st.integers(-1, 6), k2=st.integers(-1, 6),
       replace=st.booleans(), bs=st.integers(1, 10))
def test_structural_invariants(seed, k1, k2, replace, bs):
    data = random_graph(seed)
    torch.manual_seed(seed)
    loader = proposal_neighbor_loader(data, [k1, k2], batch_size=bs, replace=replace,
                                      sampler="tagraph", shuffle=True)
    for i, batch in enumerate(loader):
        seeds = batch.n_id[:batch.batch_size]
        check_structure(data, batch, [k1, k2], seeds, replace)
        if i == 2:
            break


def test_duplicate_seeds_keep_own_rows():
    data = random_graph(0)
    sampler = UniformNeighborSampler(data, [3, 3])
    from torch_geometric.sampler import NodeSamplerInput
    seeds = torch.tensor([5, 7, 5])
    out = sampler.sample_from_nodes(NodeSamplerInput(input_id=torch.arange(3), node=seeds))
    assert torch.equal(out.node[:3], seeds)
    deg = torch.bincount(data.edge_index[1], minlength=40)
    cnt = torch.bincount(out.col[: out.num_sampled_edges[0]], minlength=3)
    assert cnt.tolist() == [min(3, int(deg[5])), min(3, int(deg[7])), min(3, int(deg[5]))]
    assert (sampler._assoc == -1).all()  # scratch map reset


def test_uniform_subsets_and_inclusion_frequency():
    # One node with 6 in-edges, k = 3: all C(6, 3) = 20 subsets equally likely.
    deg_v, k, trials = 6, 3, 20_000
    colptr = torch.tensor([0, deg_v])
    g = torch.Generator().manual_seed(0)
    pos, owner = sample_neighbors(colptr, torch.zeros(trials, dtype=torch.long), k, generator=g)
    assert torch.equal(owner, torch.arange(trials).repeat_interleave(k))
    sets = pos.view(trials, k).sort(1).values
    assert (sets[:, 1:] > sets[:, :-1]).all()  # distinct
    code = (torch.tensor([1, deg_v, deg_v**2]) * sets).sum(1)
    subsets = list(itertools.combinations(range(deg_v), k))
    assert code.unique().numel() == math.comb(deg_v, k)
    freq = torch.bincount(code, minlength=deg_v**3).float()
    expected = trials / len(subsets)
    chi2 = float(((freq[freq > 0] - expected) ** 2 / expected).sum())
    assert chi2 < 45.0  # df = 19; p ~ 1e-3
    incl = torch.bincount(pos, minlength=deg_v).float() / trials
    torch.testing.assert_close(incl, torch.full((deg_v,), k / deg_v), atol=0.02, rtol=0)


def test_large_degree_and_replace_uniform():
    deg_v, k, trials = 1000, 4, 25_000
    colptr = torch.tensor([0, deg_v])
    g = torch.Generator().manual_seed(1)
    nodes = torch.zeros(trials, dtype=torch.long)
    pos, _ = sample_neighbors(colptr, nodes, k, generator=g)
    sets = pos.view(trials, k)
    assert (sets.sort(1).values.diff(dim=1) > 0).all()
    # Inclusion of the first / middle / last decile: 0.4 each.
    dec = torch.bincount(pos // 100, minlength=10).float() / (trials * k)
    torch.testing.assert_close(dec, torch.full((10,), 0.1), atol=0.006, rtol=0)
    pos_r, _ = sample_neighbors(colptr, nodes, k, replace=True, generator=g)
    dec_r = torch.bincount(pos_r // 100, minlength=10).float() / (trials * k)
    torch.testing.assert_close(dec_r, torch.full((10,), 0.1), atol=0.006, rtol=0)


class TwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = PGCNConv(3, 8), PGCNConv(8, 4)

    def forward(self, x, ei, w):
        return self.c2(self.c1(x, ei, w).relu(), ei, w)


def test_sampled_equals_full_graph_when_k_covers_degree():
    data = random_graph(3, n=60, e=240)
    kmax = int(torch.bincount(data.edge_index[1]).max())
    model = TwoLayer()
    full = model(data.x, data.edge_index, data.edge_weight)
    for k in ([kmax, kmax], [-1, -1], [kmax + 3, -1]):
        loader = proposal_neighbor_loader(data, k, batch_size=7, sampler="tagraph")
        for b in loader:
            out = model(b.x, b.edge_index, b.edge_weight)[: b.batch_size]
            torch.testing.assert_close(out, full[b.n_id[: b.batch_size]])


def test_batches_never_cross_videos():
    from tagraph.loader import collate_proposal_graphs

    graphs = [random_graph(s, n=20 + 5 * s, e=80) for s in range(4)]
    data = collate_proposal_graphs(graphs)
    assert data.num_nodes == sum(g.num_nodes for g in graphs)
    assert torch.equal(torch.bincount(data.video), torch.tensor([g.num_nodes for g in graphs]))
    loader = proposal_neighbor_loader(graphs, [4, 4], batch_size=16, shuffle=True,
                                      sampler="tagraph")
    for b in loader:
        v = b.video
        assert torch.equal(v[b.edge_index[0]], v[b.edge_index[1]])
        # Every non-seed node was reached from a node of its own video.
        reached = torch.zeros(b.num_nodes, dtype=torch.bool)
        reached[: b.batch_size] = True
        reached[b.edge_index[0]] = True
        assert reached.all()


@pytest.mark.skipif(not has_native_sampler(), reason="needs pyg-lib or torch-sparse")
def test_matches_native_sampler_structure():
    data = random_graph(5, n=80, e=300)
    kmax = int(torch.bincount(data.edge_index[1]).max())
    seeds = torch.arange(0, 80, 3)
    outs = []
    for which in ("native", "tagraph"):
        loader = proposal_neighbor_loader(data, [kmax, kmax], seeds, batch_size=seeds.numel(),
                                          sampler=which)
        outs.append(next(iter(loader)))
    a, b = outs
    assert torch.equal(a.n_id[: a.batch_size], b.n_id[: b.batch_size])
    assert set(a.n_id.tolist()) == set(b.n_id.tolist())
    assert set(a.e_id.tolist()) == set(b.e_id.tolist())
    # PyG reports per-hop counts only with pyg-lib (not through torch-sparse)
    if "num_sampled_nodes" in a:
        assert a.num_sampled_nodes == b.num_sampled_nodes
