import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.nn.graph_laplacian import (
    CGNotConvergedWarning,
    GraphLaplacianRegularization,
    laplacian_solve,
)


def _random_graph(lengths, p, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    edges, start = [], 0
    for t in lengths:
        m = torch.rand(t, t, generator=g) < p
        m.fill_diagonal_(False)
        i, j = m.nonzero(as_tuple=True)
        edges.append(torch.stack([j + start, i + start]))
        start += t
    ei = torch.cat(edges, 1)
    w = torch.rand(ei.size(1), generator=g, dtype=dtype) * 2
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    return ei, w, batch


def _reference(s, ei, w, mu, n):
    a = torch.zeros(n, n, dtype=s.dtype)
    a.index_put_((ei[1], ei[0]), w, accumulate=True)
    a = 0.5 * (a + a.T)
    lap = torch.diag(a.sum(1)) - a
    return torch.linalg.solve(torch.eye(n, dtype=s.dtype) + mu * lap, s)


@settings(max_examples=10, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 20), min_size=1, max_size=3),
    p=st.floats(0.05, 0.6),
    mu=st.floats(0.1, 5.0),
    seed=st.integers(0, 10_000),
)
def test_cg_equals_dense_equals_reference(lengths, p, mu, seed):
    ei, w, batch = _random_graph(lengths, p, seed)
    n = sum(lengths)
    s = torch.rand(n, 3, dtype=torch.float64)
    ref = _reference(s, ei, w, mu, n)
    dense = laplacian_solve(s, ei, w, mu, batch, solver="dense")
    cg = laplacian_solve(s, ei, w, mu, batch, solver="cg", tol=1e-8)
    assert torch.allclose(dense, ref, atol=1e-10)
    assert torch.allclose(cg, dense, atol=1e-5)


def test_cg_float32_default_tolerance():
    ei, w, batch = _random_graph([60, 40], 0.2, 3, dtype=torch.float32)
    s = torch.rand(100, 4)
    dense = laplacian_solve(s, ei, w, 2.0, batch, solver="dense")
    cg = laplacian_solve(s, ei, w, 2.0, batch, solver="cg")
    assert torch.allclose(cg, dense, atol=1e-5)


@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_gradcheck(solver):
    ei, w, batch = _random_graph([6, 4], 0.5, 1)
    s = torch.rand(10, 2, dtype=torch.float64, requires_grad=True)
    w = w.clone().requires_grad_()

    def f(s_, w_):
        return laplacian_solve(s_, ei, w_, 0.7, batch, solver=solver, tol=1e-13)

    assert torch.autograd.gradcheck(f, (s, w), atol=1e-6)


def test_module_and_edge_cases():
    glr = GraphLaplacianRegularization(mu=1.5, solver="cg")
    assert repr(glr) == "GraphLaplacianRegularization(mu=1.5, solver='cg')"
    ei = torch.tensor([[0, 1], [1, 0]])
    s = torch.tensor([1.0, 0.0])
    out = glr(s, ei, torch.ones(2))
    # (I + mu L)^-1 s for a single unit edge: mean preserved, difference shrunk by 1 + 2 mu
    assert torch.allclose(out.sum(), s.sum())
    assert torch.allclose(out[0] - out[1], torch.tensor(1 / (1 + 2 * 1.5)))
    with pytest.raises(ValueError, match="non-negative"):
        glr(s, ei, -torch.ones(2))
    with pytest.raises(ValueError, match="solver"):
        GraphLaplacianRegularization(solver="lu")
    # no edges -> identity
    assert torch.equal(glr(s, torch.empty(2, 0, dtype=torch.long)), s)


def test_cg_non_convergence_warns_with_residual():
    ei, w, batch = _random_graph([50], 0.3, 0)
    s = torch.rand(50, 2, dtype=torch.float64)
    with pytest.warns(CGNotConvergedWarning, match="relative residual"):
        laplacian_solve(s, ei, w, 10.0, batch, solver="cg", max_iter=2)
