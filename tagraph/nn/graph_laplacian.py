"""Graph-Laplacian regularisation of snippet scores: the (I + mu L)^-1 s solve of GRN."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import spmm

from tagraph.ops.csr import csr_tensor

__all__ = [
    "GraphLaplacianRegularization",
    "LaplacianOperator",
    "laplacian_solve",
    "CGNotConvergedWarning",
]


class CGNotConvergedWarning(RuntimeWarning):
    r"""The conjugate-gradient solve stopped at its iteration cap."""


class LaplacianOperator(MessagePassing):
    r"""Applies :math:`\mathbf{M} = \mathbf{I} + \mu \mathbf{L}` as message passing,
    with :math:`\mathbf{L} = \mathbf{D} - \mathbf{A}` the Laplacian of the
    symmetrised adjacency :math:`\mathbf{A} = (\mathbf{W} + \mathbf{W}^\top)/2`
    (:math:`W_{ij}` = weight of edge :math:`j \to i`):

    .. math::
        (\mathbf{M}\mathbf{v})_i = (1 + \mu d_i)\,\mathbf{v}_i -
        \mu \sum_{j} A_{ij} \mathbf{v}_j

    :meth:`prepare` builds the symmetrised adjacency once as a sparse CSR
    matrix (:obj:`O(E)` memory), so that every application inside an
    iterative solver is one fused sparse-dense product
    (:meth:`message_and_aggregate`).
    """

    def __init__(self) -> None:
        super().__init__(aggr="add")

    @staticmethod
    def prepare(edge_index: Tensor, edge_weight: Tensor,
                num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
        r"""Returns the symmetrised adjacency as a CSR tensor, the degrees, and
        the CSR position of each of its :obj:`2E` entries (entry :obj:`e < E`
        is edge :obj:`e` as (dst, src), entry :obj:`E + e` its reverse).

        One sort of the :obj:`2E` (row, col) keys; duplicate entries are kept
        (a sparse-dense product sums them)."""
        w = 0.5 * edge_weight
        row = torch.cat([edge_index[1], edge_index[0]])
        col = torch.cat([edge_index[0], edge_index[1]])
        val = torch.cat([w, w])
        deg = torch.zeros(num_nodes, dtype=w.dtype, device=w.device).index_add_(0, row, val)
        # Sorted by (row, col): column-ordered rows make the product cache-friendlier.
        perm = torch.sort(row * num_nodes + col).indices
        crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
        torch.cumsum(torch.bincount(row, minlength=num_nodes), 0, out=crow[1:])
        adj = csr_tensor(crow, col[perm], val[perm], (num_nodes, num_nodes),
                                      check_invariants=False)
        return adj, deg, perm

    def forward(self, v: Tensor, adj_t: Tensor, deg: Tensor, mu: float) -> Tensor:
        # The fused sparse path is called directly: inside a solver loop the
        # generic propagate() bookkeeping would cost more than the product.
        return v + mu * (deg.unsqueeze(-1) * v - self.message_and_aggregate(adj_t, v))

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:  # pragma: no cover
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        if adj_t.layout == torch.sparse_csr:
            return torch.sparse.mm(adj_t, x)
        return spmm(adj_t, x, reduce="sum")


_OPERATOR = LaplacianOperator()


def _system(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
            mu: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""Builds :math:`\mathbf{M} = \mathbf{I} + \mu \mathbf{L}` itself as one CSR
    matrix (the :obj:`2E` off-diagonal entries :math:`-\mu w_e / 2` of
    :meth:`LaplacianOperator.prepare` plus the diagonal :math:`1 + \mu d_i`), so
    that a CG iteration is a single sparse-dense product. Returns it, the
    Jacobi preconditioner :math:`1 / (1 + \mu d_i)` as :obj:`[T, 1]`, and the
    CSR position of each of the :obj:`2E + T` entries (:obj:`e < E`: edge
    :obj:`e` as (dst, src); :obj:`E + e`: its reverse; :obj:`2E + i`: the
    diagonal entry of node :obj:`i`). Built once per forward and reused by the
    backward."""
    n = num_nodes
    w = 0.5 * edge_weight
    src, dst = edge_index[0], edge_index[1]
    deg = torch.zeros(n, dtype=w.dtype, device=w.device).index_add_(0, dst, w).index_add_(0, src, w)
    diag = 1.0 + mu * deg
    nodes = torch.arange(n, device=src.device)
    row = torch.cat([dst, src, nodes])
    col = torch.cat([src, dst, nodes])
    off = -mu * w
    val = torch.cat([off, off, diag])
    # Sorted by (row, col); 32-bit keys sort about twice as fast when they fit.
    # 32-bit CSR indices when they fit: the CPU sparse product otherwise converts
    # them on every call.
    key = row * n + col
    small = n * n < 2**31
    if small:
        key = key.to(torch.int32)
    perm = torch.sort(key).indices
    idx_dtype = torch.int32 if small else torch.long
    crow = torch.zeros(n + 1, dtype=idx_dtype, device=row.device)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=crow[1:])
    m = csr_tensor(crow, col[perm].to(idx_dtype), val[perm], (n, n),
                                check_invariants=False)
    return m, (1.0 / diag).unsqueeze(-1), perm


def _cg(
    b: Tensor, m: Tensor, dinv: Tensor, tol: float, max_iter: int,
    x0: Tensor | None = None,
) -> tuple[Tensor, float, int]:
    # Jacobi-preconditioned conjugate gradient, all right-hand sides (columns) at
    # once, with M the CSR matrix of _system(). Column sums over the T rows go
    # through one BLAS product with [1; dinv] (much faster than .sum(0) over
    # the strided dimension), and the vector updates are in place.
    tiny = torch.finfo(b.dtype).tiny
    x = b * dinv if x0 is None else x0.clone()
    r = b - _OPERATOR.message_and_aggregate(m, x)
    if b.numel() == 0:
        return x, 0.0, 0
    weights = torch.cat([torch.ones_like(dinv), dinv], 1).T  # [2, T]
    b_norm = b.norm(dim=0).clamp(min=tiny)
    # Preallocated [T, C] work buffers: fresh ones would be page-faulted in on
    # every iteration.
    buf = torch.empty_like(r)
    ap = torch.zeros_like(r)
    rr, rz = weights @ torch.mul(r, r, out=buf)  # ||r_c||^2 and r_c^T D^-1 r_c
    p = r * dinv
    res = float((rr.sqrt() / b_norm).max())
    it = 0
    while res > tol and it < max_iter:
        torch.addmm(ap, m, p, beta=0.0, out=ap)  # ap = M p
        pap = weights[0] @ torch.mul(p, ap, out=buf)
        alpha = torch.where(pap > 0, rz / pap.clamp(min=tiny), torch.zeros_like(pap))
        x.addcmul_(p, alpha)
        r.addcmul_(ap, alpha, value=-1.0)
        it += 1
        rr, rz_new = weights @ torch.mul(r, r, out=buf)
        res = float((rr.sqrt() / b_norm).max())
        if res <= tol:
            break
        beta = torch.where(rz > 0, rz_new / rz.clamp(min=tiny), torch.zeros_like(rz))
        p.mul_(beta).addcmul_(r, dinv)
        rz = rz_new
    return x, res, it


def _dense_system(
    edge_index: Tensor, edge_weight: Tensor, batch: Tensor, ptr: Tensor, mu: float,
) -> tuple[Tensor, Tensor, int]:
    # Per-graph dense M = I + mu L, padded to [B, T_max, T_max] (identity on padding).
    counts = ptr[1:] - ptr[:-1]
    b = counts.numel()
    t_max = int(counts.max()) if b else 0
    local = torch.arange(batch.numel(), device=batch.device) - ptr[:-1][batch]
    g = batch[edge_index[1]]
    i, j = local[edge_index[1]], local[edge_index[0]]
    a = edge_weight.new_zeros(b, t_max, t_max)
    w = 0.5 * edge_weight
    a.index_put_((g, i, j), w, accumulate=True)
    a.index_put_((g, j, i), w, accumulate=True)
    lap = torch.diag_embed(a.sum(-1)) - a
    m = torch.eye(t_max, dtype=a.dtype, device=a.device).expand(b, t_max, t_max) + mu * lap
    return m, local, t_max


class _LaplacianSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, s: Tensor, edge_weight: Tensor, edge_index: Tensor, batch: Tensor,
                ptr: Tensor, mu: float, solver: str, tol: float, max_iter: int) -> Tensor:
        n = s.size(0)
        ctx.mu, ctx.solver, ctx.tol, ctx.max_iter = mu, solver, tol, max_iter
        if solver == "dense":
            m, local, t_max = _dense_system(edge_index, edge_weight, batch, ptr, mu)
            chol = torch.linalg.cholesky(m)
            rhs = s.new_zeros(m.size(0), t_max, s.size(1))
            rhs[batch, local] = s
            out = torch.cholesky_solve(rhs, chol)[batch, local]
            ctx.save_for_backward(out, edge_weight, edge_index, batch, local, chol)
        else:
            m, dinv, perm = _system(edge_index, edge_weight, n, mu)
            out, res, it = _cg(s.contiguous(), m, dinv, tol, max_iter)
            _warn_cg(res, it, tol, "forward")
            ctx.m, ctx.dinv = m, dinv
            ctx.save_for_backward(out, edge_weight, edge_index, perm)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):
        mu = ctx.mu
        perm = None
        if ctx.solver == "dense":
            out, edge_weight, edge_index, batch, local, chol = ctx.saved_tensors
            rhs = grad_out.new_zeros(chol.size(0), chol.size(1), grad_out.size(1))
            rhs[batch, local] = grad_out
            u = torch.cholesky_solve(rhs, chol)[batch, local]
        else:
            out, edge_weight, edge_index, perm = ctx.saved_tensors
            u, res, it = _cg(grad_out.contiguous(), ctx.m, ctx.dinv, ctx.tol, ctx.max_iter)
            _warn_cg(res, it, ctx.tol, "backward")
        grad_s = u if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            # dl/dw_e = -mu/2 (u_i - u_j).(s_i - s_j) for edge j -> i.
            src, dst = edge_index[0], edge_index[1]
            if perm is None:
                us = torch.cat([u, out], -1)
                c = u.size(1)
                d = us.index_select(0, dst) - us.index_select(0, src)
                grad_w = -0.5 * mu * (d[:, :c] * d[:, c:]).sum(-1)
            else:
                # Expanded as u_i.s_i + u_j.s_j - u_i.s_j - u_j.s_i: all four
                # terms are one sampled product (U S^T) on the sparsity pattern
                # of M (off-diagonal entries: cross terms; diagonal: u_i.s_i),
                # cheaper than gathering [E, C] rows.
                prod = torch.sparse.sampled_addmm(ctx.m, u, out.T, beta=0.0).values()
                e = src.numel()
                cross = prod.new_empty(prod.numel())
                cross[perm] = prod
                diag = cross[2 * e:]
                grad_w = -0.5 * mu * (diag[dst] + diag[src] - cross[:e] - cross[e:2 * e])
        return grad_s, grad_w, None, None, None, None, None, None, None


def _warn_cg(res: float, it: int, tol: float, where: str) -> None:
    if res > tol:
        warnings.warn(
            f"GraphLaplacianRegularization: conjugate gradient ({where}) did not converge in "
            f"{it} iterations: relative residual {res:.3e} > tol {tol:.1e}; raise 'max_iter', "
            f"lower 'mu' or use solver='dense'",
            CGNotConvergedWarning,
            stacklevel=4,
        )


def _batch_ptr(batch: Tensor | None, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    num_graphs = int(batch.max()) + 1 if n > 0 else 0
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return batch, ptr


def laplacian_solve(
    s: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    mu: float = 1.0,
    batch: Tensor | None = None,
    solver: str = "auto",
    tol: float = 1e-6,
    max_iter: int = 1000,
    dense_max_nodes: int = 256,
) -> Tensor:
    r"""Solves :math:`(\mathbf{I} + \mu \mathbf{L})\,\hat{\mathbf{s}} = \mathbf{s}`
    for all columns of :obj:`s`; see :class:`GraphLaplacianRegularization`."""
    if s.dim() == 1:
        return laplacian_solve(s.unsqueeze(-1), edge_index, edge_weight, mu, batch, solver, tol,
                               max_iter, dense_max_nodes).squeeze(-1)
    n = s.size(0)
    if edge_weight is None:
        edge_weight = s.new_ones(edge_index.size(1))
    if edge_weight.numel() != edge_index.size(1):
        raise ValueError(
            f"GraphLaplacianRegularization: {edge_weight.numel()} edge weights for "
            f"{edge_index.size(1)} edges"
        )
    if mu < 0:
        raise ValueError(f"GraphLaplacianRegularization: 'mu' must be >= 0, got {mu}")
    if bool((edge_weight.detach() < 0).any()):
        raise ValueError("GraphLaplacianRegularization: edge weights must be non-negative")
    if n == 0 or mu == 0 or edge_index.numel() == 0:
        return s * 1.0
    batch, ptr = _batch_ptr(batch, n, s.device)
    if solver == "auto":
        t_max = int((ptr[1:] - ptr[:-1]).max())
        solver = "dense" if t_max <= dense_max_nodes else "cg"
    if solver not in ("dense", "cg"):
        raise ValueError(f"GraphLaplacianRegularization: unknown solver '{solver}' "
                         "(auto, dense or cg)")
    edge_weight = edge_weight.to(s.dtype)
    return _LaplacianSolve.apply(s, edge_weight, edge_index, batch, ptr, float(mu), solver,
                                 float(tol), int(max_iter))


class GraphLaplacianRegularization(torch.nn.Module):
    r"""The graph-Laplacian regularisation of class activations from the
    "Graph Regularization Network with Semantic Affinity for
    Weakly-Supervised Temporal Action Localization" paper (Park et al., GRN,
    ICIP 2019):

    .. math::
        \hat{\mathbf{S}} = \operatorname*{arg\,min}_{\hat{\mathbf{S}}}
        \|\mathbf{S} - \hat{\mathbf{S}}\|_F^2 + \mu\,\mathrm{tr}(\hat{\mathbf{S}}^\top
        \mathbf{L} \hat{\mathbf{S}}) = (\mathbf{I} + \mu \mathbf{L})^{-1} \mathbf{S},
        \qquad \mathbf{L} = \mathbf{D} - \mathbf{A},

    for all classes (columns of :math:`\mathbf{S}`) and all graphs of a batch at
    once, with :math:`\mathbf{A} = (\mathbf{W} + \mathbf{W}^\top)/2` built from
    the edge weights (on an undirected graph stored with both directions, the
    usual :math:`\mathbf{L} = \mathbf{D} - \mathbf{W}`). Two solvers give the
    same results:

    * :obj:`"dense"`: per-graph Cholesky factorisation of the padded
      :obj:`[B, T, T]` systems (fast for short videos, :math:`O(T^2)` memory);
    * :obj:`"cg"`: Jacobi-preconditioned conjugate gradient in which
      :math:`\mathbf{M}\mathbf{v}` is one sparse-dense product over the edges
      (:class:`LaplacianOperator`; :math:`\mathbf{M}` is built once per forward
      as a CSR matrix, :math:`O(E + T)` memory, and reused by the backward) for
      long videos.

    Gradients come from implicit differentiation, not from back-propagating
    through the solver: with :math:`\mathbf{M} = \mathbf{I} + \mu \mathbf{L}` and
    incoming gradient :math:`\mathbf{G}`, one more solve
    :math:`\mathbf{U} = \mathbf{M}^{-1}\mathbf{G}` gives
    :math:`\partial \ell / \partial \mathbf{S} = \mathbf{U}` and, for an edge
    :math:`j \to i`,

    .. math::
        \frac{\partial \ell}{\partial w_{ji}} = -\frac{\mu}{2}
        \sum_c (u_{ic} - u_{jc})(\hat{s}_{ic} - \hat{s}_{jc}).

    A CG solve that stops at :obj:`max_iter` above :obj:`tol` emits a
    :class:`CGNotConvergedWarning` with its residual.

    Args:
        mu (float, optional): Regularisation strength :math:`\mu \geq 0`.
            (default: :obj:`1.0`)
        solver (str, optional): :obj:`"auto"` (dense up to
            :obj:`dense_max_nodes` snippets per video, else CG), :obj:`"dense"`
            or :obj:`"cg"`. (default: :obj:`"auto"`)
        tol (float, optional): CG tolerance on the relative residual
            :math:`\max_c \|\mathbf{r}_c\| / \|\mathbf{s}_c\|`. (default: :obj:`1e-6`)
        max_iter (int, optional): CG iteration cap. (default: :obj:`1000`)
        dense_max_nodes (int, optional): Largest video solved densely by
            :obj:`"auto"`. (default: :obj:`256`)

    Shapes:
        - **input:**
          scores :math:`(|\mathcal{V}|, C)` or :math:`(|\mathcal{V}|)`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional, non-negative)*,
          batch vector :math:`(|\mathcal{V}|)` *(optional)*
        - **output:** regularised scores, same shape as the input scores
    """

    def __init__(
        self,
        mu: float = 1.0,
        solver: str = "auto",
        tol: float = 1e-6,
        max_iter: int = 1000,
        dense_max_nodes: int = 256,
    ) -> None:
        super().__init__()
        if solver not in ("auto", "dense", "cg"):
            raise ValueError(f"GraphLaplacianRegularization: unknown solver '{solver}' "
                             "(auto, dense or cg)")
        if mu < 0:
            raise ValueError(f"GraphLaplacianRegularization: 'mu' must be >= 0, got {mu}")
        self.mu = float(mu)
        self.solver = solver
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.dense_max_nodes = int(dense_max_nodes)

    def reset_parameters(self) -> None:
        pass

    def forward(
        self,
        s: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        return laplacian_solve(s, edge_index, edge_weight, self.mu, batch, self.solver, self.tol,
                               self.max_iter, self.dense_max_nodes)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(mu={self.mu}, solver={self.solver!r})"
