import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

from tagraph.nn import PGCNConv


def dense_mean(x_src, n_dst, edge_index, edge_weight):
    """(1/|S(i)|) sum_j A_ij x_j with a dense [n_dst, n_src] matrix."""
    w = torch.ones(edge_index.size(1)) if edge_weight is None else edge_weight
    a = torch.zeros(n_dst, x_src.size(0)).index_put_(
        (edge_index[1], edge_index[0]), w, accumulate=True)
    cnt = torch.zeros(n_dst).index_add_(0, edge_index[1], torch.ones(edge_index.size(1)))
    return (a @ x_src) / cnt.clamp(min=1).unsqueeze(-1)


def dense_reference(conv, x, edge_index, edge_weight, num_dst=None):
    """Eq. 10 with dense matrices: W((1/|S(i)|) sum_j A_ij x_j + x_i) + b."""
    x_src, x_dst = (x, x) if isinstance(x, torch.Tensor) else x
    return conv.lin(dense_mean(x_src, x_dst.size(0), edge_index, edge_weight) + x_dst)


def random_graph(seed, n, e, d=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_weight = torch.rand(e, generator=g)
    edge_weight[::3] = 0.0  # relu(cos) zeros must still count in |S(i)|
    return x, edge_index, edge_weight


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), e=st.integers(0, 40),
       weighted=st.booleans())
def test_matches_dense_reference(seed, n, e, weighted):
    x, edge_index, edge_weight = random_graph(seed, n, e)
    edge_weight = edge_weight if weighted else None
    torch.manual_seed(seed)
    conv = PGCNConv(5, 3)
    out = conv(x, edge_index, edge_weight)
    assert out.shape == (n, 3)
    torch.testing.assert_close(out, dense_reference(conv, x, edge_index, edge_weight))


@pytest.mark.parametrize("weighted", [True, False])
def test_root_weight_matches_dense_reference(weighted):
    # x'_i = W_1 x_i + W_2 mean_j A_ij x_j + b: the untied variant, against dense
    x, edge_index, edge_weight = random_graph(7, 10, 30)
    edge_weight = edge_weight if weighted else None
    conv = PGCNConv(5, 3, root_weight=True)
    out = conv(x, edge_index, edge_weight)
    agg = dense_mean(x, 10, edge_index, edge_weight)
    torch.testing.assert_close(out, conv.lin(agg) + conv.lin_root(x))
    # with W_1 = W_2 it is Eq. 10 again
    with torch.no_grad():
        conv.lin_root.weight.copy_(conv.lin.weight)
    tied = PGCNConv(5, 3)
    tied.lin.load_state_dict(conv.lin.state_dict())
    torch.testing.assert_close(conv(x, edge_index, edge_weight),
                               tied(x, edge_index, edge_weight))
    # the bipartite (seed-only) form agrees too
    ref = conv(x, edge_index, edge_weight)
    keep = (edge_index[1] < 4).nonzero().view(-1)
    part = conv((x, x[:4]), edge_index[:, keep], None if edge_weight is None
                else edge_weight[keep], size=(10, 4))
    torch.testing.assert_close(part, ref[:4])
    assert repr(conv) == "PGCNConv(5, 3, root_weight=True)"


def test_isolated_node_and_plain_mean():
    conv = PGCNConv(2, 2, bias=False)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    edge_index = torch.tensor([[0, 1], [2, 2]])  # 0->2, 1->2; nodes 0, 1 isolated as targets
    out = conv(x, edge_index)
    torch.testing.assert_close(out[:2], conv.lin(x[:2]))
    torch.testing.assert_close(out[2], conv.lin(x[2] + (x[0] + x[1]) / 2))
    out_w = conv(x, edge_index, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(out_w[2], conv.lin(x[2] + x[0] / 2))


def test_bipartite_and_gradients():
    x, edge_index, edge_weight = random_graph(0, 8, 30)
    x_dst = torch.randn(4, 5)
    edge_index[1] %= 4
    conv = PGCNConv((5, 5), 7)
    w = edge_weight.clone().requires_grad_()
    out = conv((x, x_dst), edge_index, w, size=(8, 4))
    assert out.shape == (4, 7)
    torch.testing.assert_close(out, dense_reference(conv, (x, x_dst), edge_index, w))
    out.sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
    with pytest.raises(ValueError, match="must match"):
        PGCNConv((5, 6), 7)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support")
def test_torch_sparse_adjacency_fast_path():
    x, edge_index, edge_weight = random_graph(1, 10, 35)
    conv = PGCNConv(5, 4)
    # adj_t[i, j] = A_ij for edge j -> i; duplicates must stay separate entries -> coalesce
    # would merge them, so use unique edges here.
    edge_index, inv = torch.unique(edge_index, dim=1, return_inverse=True)
    w = torch.zeros(edge_index.size(1)).scatter_(0, inv, edge_weight)
    expected = conv(x, edge_index, w)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), w, (10, 10)).coalesce().to_sparse_csr()
    torch.testing.assert_close(conv(x, adj_t), expected)
    with pytest.raises(ValueError, match="not both"):
        conv(x, adj_t, w)


@pytest.mark.skipif(not WITH_TORCH_SPARSE, reason="torch-sparse is not installed")
def test_sparse_tensor_fast_path():
    x, edge_index, edge_weight = random_graph(2, 10, 35)
    edge_index, inv = torch.unique(edge_index, dim=1, return_inverse=True)
    w = torch.zeros(edge_index.size(1)).scatter_(0, inv, edge_weight)
    conv = PGCNConv(5, 4)
    adj_t = SparseTensor(row=edge_index[1], col=edge_index[0], value=w, sparse_sizes=(10, 10))
    torch.testing.assert_close(conv(x, adj_t), conv(x, edge_index, w))


def test_repr_and_reset():
    conv = PGCNConv(16, 32)
    assert repr(conv) == "PGCNConv(16, 32)"
    assert repr(PGCNConv((8, 8), 4)) == "PGCNConv((8, 8), 4)"
    w = conv.lin.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(w, conv.lin.weight)
    with pytest.raises(ValueError, match="mean"):
        PGCNConv(4, 4, aggr="max")


@pytest.mark.slow
def test_torch_compile():
    x, edge_index, edge_weight = random_graph(3, 12, 40)
    conv = PGCNConv(5, 4)
    expected = conv(x, edge_index, edge_weight)
    try:
        compiled = torch.compile(conv)
        out = compiled(x, edge_index, edge_weight)
    except Exception as exc:  # pragma: no cover - no C compiler for inductor, etc.
        pytest.skip(f"torch.compile unavailable here: {type(exc).__name__}: {exc}"[:200])
    torch.testing.assert_close(out, expected)
