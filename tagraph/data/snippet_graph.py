r"""Snippet graphs: nodes are the snippets of one video."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from tagraph.data._graph_checks import (
    check_features,
    check_snippet_times,
    expand_ranges,
    where_prefix,
)
from tagraph.data.proposal_graph import _edge_dots_sddmm, cosine_edge_weight

__all__ = ["snippet_graph", "temporal_edges", "knn_edges"]

# Similarity entries held at once by the blocked kNN (rows x T floats).
_KNN_BLOCK_ENTRIES = 1 << 22
# Threshold pruning of the exact kNN: a row merges its block entries at or
# above its running k-th best when it has at most this many (more: a top-k of
# the row), and a block whose rows average more than a quarter of it takes a
# full top-k.
_KNN_PRUNE_HITS = 64
# Approximate kNN: dimension of the seeded Gaussian random projection, seed,
# spherical k-means iterations, and candidate pool per cluster (in units of the
# candidates re-ranked per node).
_APPROX_DIM = 64
_APPROX_SEED = 0
_KMEANS_ITERS = 6
_POOL_FACTOR = 8
# Mean cluster size of the inverted file: few, large clusters keep the number
# of (small) tensor operations low, which matters more than FLOPs on a busy CPU.
_CLUSTER_SIZE = 256


def temporal_edges(num_snippets: int, offsets: Sequence[int],
                   device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    r"""Temporal edges: for offset :math:`k` (the :math:`m`-th of
    :obj:`offsets`), snippet :math:`t` receives from :math:`t + k` whenever
    :math:`0 \le t + k < T`, with :obj:`edge_type` :math:`m`.

    Returns :obj:`edge_index` :obj:`[2, E]` (row 0 = source :math:`t + k`,
    row 1 = target :math:`t`) and :obj:`edge_type` :obj:`[E]`.
    """
    idx, typ = [], []
    for m, k in enumerate(offsets):
        lo = max(0, -k)
        dst = torch.arange(lo, max(lo, min(num_snippets, num_snippets - k)), device=device)
        idx.append(torch.stack([dst + k, dst]))
        typ.append(torch.full((dst.numel(),), m, dtype=torch.long, device=device))
    if not idx:
        return (torch.zeros(2, 0, dtype=torch.long, device=device),
                torch.zeros(0, dtype=torch.long, device=device))
    return torch.cat(idx, 1), torch.cat(typ)


def knn_edges(
    x: Tensor,
    k: int,
    exclude_offsets: Sequence[int] = (),
    block_entries: int | None = None,
    method: str = "exact",
    candidates: int = 16,
) -> tuple[Tensor, Tensor]:
    r"""Semantic :math:`k`-nearest neighbours by cosine similarity.

    Snippet :math:`t` receives from the :math:`k` other snippets :math:`u` of
    highest :math:`\cos(x_t, x_u)`, excluding :math:`u = t` and
    :math:`u = t + o` for :math:`o` in :obj:`exclude_offsets`; ties go to the
    lower index. Blocked: square blocks of at most :obj:`block_entries`
    similarities are multiplied one at a time, reduced with :obj:`topk` and
    merged into a running top-:math:`k`, so memory is
    :math:`O(\mathrm{block} + Tk)`, never :math:`T \times T`; the
    similarity being symmetric, only the blocks on and above the diagonal are
    computed (half the :math:`T^2 D` multiply-adds), each updating both its
    rows and its columns. After the diagonal blocks, a block only merges the
    entries at or above each row's running :math:`k`-th best similarity
    (threshold pruning: nothing below it can enter the top-:math:`k`), which
    replaces most of the per-block :obj:`topk` work and the transposed copy.

    With :obj:`method="approx"` the neighbours are searched among
    :math:`c` = :obj:`candidates` candidates per node: :math:`x` is projected
    to :math:`m = 64` dimensions by a standard Gaussian matrix drawn from a
    CPU generator seeded with 0 (so the result is deterministic) and
    normalised, the projections are grouped by spherical :math:`k`-means
    (:math:`\lceil T / 256 \rceil` seeded centroids, 6 iterations), and each
    node scores, in the projection, the members of the clusters nearest to its
    own (by centroid cosine) until :math:`\max(8c, 512)` nodes are covered;
    its :math:`c` best are re-ranked by their exact cosine similarity (one
    sampled dense-dense product). The returned similarities are exact; a true
    neighbour missed by the candidate search is replaced by the next best
    candidate. Cost :math:`O(T D m + T m \max(8c, 512) + T c D)` instead of
    :math:`O(T^2 D)`; with :math:`c \ge T` every node is a candidate and the
    result is the exact one. Recall is high when neighbours are clearly
    closer than the rest (near-duplicate or strongly structured features) and
    low when isotropic noise decides the ranking (then the exact neighbours
    are noise as well).

    Args:
        x (torch.Tensor): Features :obj:`[T, D]`.
        k (int): Neighbours per node.
        exclude_offsets (Sequence[int], optional): Offsets :math:`o` such that
            :math:`t + o` is never a neighbour of :math:`t`. (default: :obj:`()`)
        block_entries (int, optional): Similarity entries held at once.
            (default: :obj:`None`, 4M)
        method (str, optional): :obj:`"exact"` or :obj:`"approx"`.
            (default: :obj:`"exact"`)
        candidates (int, optional): Candidates re-ranked exactly per node
            (:obj:`"approx"` only). (default: :obj:`16`)

    Returns :obj:`edge_index` :obj:`[2, T k']` sorted by (target, similarity
    descending, source) with :math:`k' = \min(k, \text{available})`, and the
    cosine similarities :obj:`[T k']`.
    """
    if method not in ("exact", "approx"):
        raise ValueError(f"'method' must be 'exact' or 'approx', got {method!r}")
    if candidates < 1:
        raise ValueError(f"'candidates' must be >= 1, got {candidates}")
    t = x.size(0)
    device = x.device
    excl = sorted({int(o) for o in exclude_offsets} | {0})
    if t == 0:
        return (torch.zeros(2, 0, dtype=torch.long, device=device), x.new_zeros(0))
    # every row gets the same k' = min(k, fewest candidates any row has left)
    rows_t = torch.arange(t, device=device)
    offs = torch.tensor(excl, device=device)
    n_excl = ((rows_t[:, None] + offs >= 0) & (rows_t[:, None] + offs < t)).sum(1)
    kk = min(k, int((t - n_excl).min()))
    if kk <= 0:
        return (torch.zeros(2, 0, dtype=torch.long, device=device), x.new_zeros(0))
    if block_entries is None:
        block_entries = _KNN_BLOCK_ENTRIES
    if method == "approx":
        return _approx_knn(x, kk, excl, candidates, block_entries)
    xn = torch.nn.functional.normalize(x, dim=1, eps=1e-12)
    # similarity is symmetric: only blocks (a, b) with b >= a are multiplied,
    # and each one updates the running top-k of its rows and of its columns;
    # the diagonal blocks go first, so the others meet meaningful thresholds
    bs = max(1, math.isqrt(max(1, block_entries)))
    best_val = x.new_full((t, kk), -math.inf)
    best_idx = torch.full((t, kk), t, dtype=torch.long, device=device)
    neg = torch.finfo(x.dtype).min
    starts = list(range(0, t, bs))
    pairs = [(a, a) for a in starts] + [(a, b) for a in starts for b in starts if b > a]
    for a, b in pairs:
        ra, rb = min(t, a + bs), min(t, b + bs)
        sim = xn[a:ra] @ xn[b:rb].T  # [Ba, Bb]
        saved = _mask(sim, a, b, excl, neg)
        _update(best_val, best_idx, a, sim, b)
        if b != a:  # the columns' side, on the transposed view (no copy)
            _restore(sim, saved)
            _mask(sim.T, b, a, excl, neg)
            _update(best_val, best_idx, b, sim.T, a)
    src = best_idx.flatten()
    val = best_val.flatten()
    dst = torch.arange(t, device=device).repeat_interleave(kk)
    return torch.stack([src, dst]), val


def _excluded(cand: Tensor, rows: Tensor, offsets: list[int]) -> Tensor:
    """Mask of candidates :obj:`cand[i, j]` equal to :obj:`rows[i] + o`."""
    diff = cand - rows[:, None]
    bad = diff == offsets[0]
    for o in offsets[1:]:
        bad |= diff == o
    return bad


def _approx_candidates(x: Tensor, c: int, excl: list[int], block_entries: int) -> Tensor:
    r"""Candidate neighbours :obj:`[T, c]` of every node (distinct, in no
    particular order) from a random projection and an inverted-file search.

    1. :math:`z = \mathrm{normalise}(x R)` with :math:`R \in \mathbb
       R^{D \times m}` standard Gaussian (seed :obj:`_APPROX_SEED`, drawn on
       the CPU), :math:`m` = :obj:`_APPROX_DIM` (or :math:`z` = normalised
       :math:`x` when :math:`D \le m`);
    2. spherical :math:`k`-means on :math:`z`: :math:`\lceil T / 256 \rceil`
       centroids initialised on seeded random nodes, :obj:`_KMEANS_ITERS`
       Lloyd iterations; clusters above 512 nodes are halved at the median of
       a seeded random projection until none is (so the search stays
       :math:`O(T \cdot \text{pool})` when k-means collapses on noisy
       features);
    3. for each cluster, the nearest clusters (by centroid cosine, its own
       first) until they hold :math:`\ge \max(8c, 512)` nodes; each member
       scores them all by :math:`z_t \cdot z_u` and keeps its :math:`c` best
       (excluded offsets last). Memory stays :math:`O(\text{block} + Tc)`.
    """
    t, d = x.shape
    device = x.device
    g = torch.Generator().manual_seed(_APPROX_SEED)
    if d > _APPROX_DIM:
        proj = torch.randn(d, _APPROX_DIM, generator=g, dtype=torch.float32)
        z = x @ proj.to(device=device, dtype=x.dtype)
    else:
        z = x
    z = torch.nn.functional.normalize(z, dim=1, eps=1e-12)
    nc = max(1, -(-t // _CLUSTER_SIZE))
    cent = z[torch.randperm(t, generator=g)[:nc].to(device)]
    rows_nc = torch.arange(nc, device=device)
    for _ in range(_KMEANS_ITERS + 1):
        assign = (z @ cent.T).argmax(1)
        if _ == _KMEANS_ITERS:
            break
        onehot = (assign[None, :] == rows_nc[:, None]).to(z.dtype)  # [nc, T]
        acc = onehot @ z
        norm = torch.linalg.vector_norm(acc, dim=1, keepdim=True)
        cent = torch.where(norm > 0, acc / norm.clamp_min(1e-12), cent)
    # noise-dominated features can collapse k-means into a few huge clusters,
    # which would make the search quadratic: halve every cluster larger than
    # 2 x _CLUSTER_SIZE at the median of a seeded random projection until
    # none is (at most log2(T / _CLUSTER_SIZE) rounds)
    while True:
        size = torch.bincount(assign, minlength=nc)
        big = size > 2 * _CLUSTER_SIZE
        nb = int(big.sum())
        if nb == 0:
            break
        new_id = torch.full((nc,), -1, dtype=torch.long, device=device)
        new_id[big] = torch.arange(nc, nc + nb, device=device)
        direction = torch.randn(nc, z.size(1), generator=g).to(device=device, dtype=z.dtype)
        proj = (z * direction[assign]).sum(1)
        order = torch.sort(proj, stable=True).indices
        order = order[torch.sort(assign[order], stable=True).indices]  # by (cluster, proj)
        start = torch.cumsum(size, 0) - size
        rank = torch.empty_like(order)
        rank[order] = torch.arange(t, device=device) - start[assign[order]]
        upper = big[assign] & (rank >= size[assign] // 2)
        assign = torch.where(upper, new_id[assign], assign)
        nc += nb
    rows_nc = torch.arange(nc, device=device)
    acc = (assign[None, :] == rows_nc[:, None]).to(z.dtype) @ z
    cent = acc / torch.linalg.vector_norm(acc, dim=1, keepdim=True).clamp_min(1e-12)
    members = torch.sort(assign, stable=True).indices
    size = torch.bincount(assign, minlength=nc)
    offset = torch.cumsum(size, 0) - size
    # clusters in order of centroid similarity; the own cluster first
    csim = cent @ cent.T
    csim.fill_diagonal_(math.inf)
    near = torch.sort(csim, dim=1, descending=True, stable=True).indices
    covered = torch.cumsum(size[near], 1)
    pool = min(t, max(_POOL_FACTOR * c, 2 * _CLUSTER_SIZE))
    nprobe = torch.searchsorted(covered, torch.full((nc, 1), pool, device=device)) + 1
    nprobe = nprobe.clamp(max=nc).flatten().tolist()
    size_l, offset_l = size.tolist(), offset.tolist()
    out = torch.empty(t, c, dtype=torch.long, device=device)
    where = torch.full((t,), -1, dtype=torch.long, device=device)  # node -> column
    offs = torch.tensor(excl, dtype=torch.long, device=device)
    for a in range(nc):
        if size_l[a] == 0:
            continue
        q_all = members[offset_l[a]:offset_l[a] + size_l[a]]
        probes = near[a, :nprobe[a]]
        _, pos = expand_ranges(offset[probes], offset[probes] + size[probes])
        cand = members[pos]
        where[cand] = torch.arange(cand.numel(), device=device)
        zc = z[cand].T
        rows = max(1, block_entries // max(1, cand.numel()))
        for b in range(0, q_all.numel(), rows):
            q = q_all[b:b + rows]
            sim = z[q] @ zc
            # excluded pairs (q, q + o) that lie in the pool
            u = q[:, None] + offs
            col = where[u.clamp(0, t - 1)]
            hit = ((u >= 0) & (u < t) & (col >= 0)).nonzero()
            sim[hit[:, 0], col[hit[:, 0], hit[:, 1]]] = -math.inf
            out[q] = cand[torch.topk(sim, c, dim=1, sorted=False).indices]
        where[cand] = -1
    return out


def _approx_knn(x: Tensor, k: int, excl: list[int], candidates: int,
                block_entries: int) -> tuple[Tensor, Tensor]:
    t = x.size(0)
    # enough candidates for k valid ones whatever the exclusions
    c = min(t, max(candidates, k + len(excl)))
    cand = torch.sort(_approx_candidates(x, c, excl, block_entries), dim=1).values
    rows = torch.arange(t, device=x.device)
    src = cand.flatten()
    dst = rows.repeat_interleave(c)
    # exact cosine of every candidate pair (as cosine_edge_weight, without relu)
    dots = _edge_dots_sddmm(x, src, dst)
    if dots is None:
        dots = x.new_empty(src.numel())
        chunk = max(1, (1 << 19) // max(1, x.size(1)))
        for a in range(0, src.numel(), chunk):
            torch.linalg.vecdot(x.index_select(0, src[a:a + chunk]),
                                x.index_select(0, dst[a:a + chunk]), out=dots[a:a + chunk])
    inv = 1.0 / torch.linalg.vector_norm(x, dim=1).clamp_min(1e-12)
    sim = (dots.view(t, c) * inv[cand]) * inv[:, None]
    sim.masked_fill_(_excluded(cand, rows, excl), -math.inf)
    # rows of cand are sorted by index: a stable sort by value keeps ties in index order
    o = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k]
    val = sim.gather(1, o)
    idx = cand.gather(1, o)
    return torch.stack([idx.flatten(), rows.repeat_interleave(k)]), val.flatten()


def _mask(sim: Tensor, row0: int, col0: int, offsets: list[int],
          fill: float) -> tuple[Tensor, Tensor, Tensor] | None:
    r"""Fills entry :obj:`(i, j)` (row :obj:`row0 + i`, column :obj:`col0 + j`)
    with :obj:`fill` where the column is the row plus an excluded offset, and
    returns the positions and their former values (or :obj:`None`)."""
    rows, cols = sim.shape
    ii, jj = [], []
    for o in offsets:
        lo = max(0, col0 - row0 - o)
        hi = min(rows, col0 + cols - row0 - o)
        if hi > lo:
            i = torch.arange(lo, hi, device=sim.device)
            ii.append(i)
            jj.append(i + (row0 + o - col0))
    if not ii:
        return None
    i, j = torch.cat(ii), torch.cat(jj)
    old = sim[i, j]
    sim[i, j] = fill
    return i, j, old


def _restore(sim: Tensor, saved: tuple[Tensor, Tensor, Tensor] | None) -> None:
    if saved is not None:
        i, j, old = saved
        sim[i, j] = old


def _update(best_val: Tensor, best_idx: Tensor, row0: int, sim: Tensor, col0: int) -> None:
    r"""Merges block :obj:`sim` (rows :obj:`row0...`, columns :obj:`col0...`;
    may be a transposed view) into the running top-k.

    Threshold pruning: an entry below its row's current :math:`k`-th best
    value can never enter that row's top-:math:`k` (the :math:`k` kept ones
    all beat it), so only the entries at or above it (ties included, for the
    lower-index rule) are merged, as a dense :obj:`[rows, hits]` padding.
    Rows meet useful thresholds after the diagonal blocks; a block whose rows
    average more than :obj:`_KNN_PRUNE_HITS / 4` such entries (the first
    blocks) takes the full :func:`_block_topk`, and so do single rows with
    more than :obj:`_KNN_PRUNE_HITS` (heavy ties). Exact either way.
    """
    rows, k = sim.size(0), best_val.size(1)
    hit = sim >= best_val[row0:row0 + rows, k - 1:]
    total = int(torch.count_nonzero(hit))
    if total == 0:
        return
    if total > rows * (_KNN_PRUNE_HITS // 4):
        _merge(best_val, best_idx, torch.arange(row0, row0 + rows, device=sim.device),
               *_block_topk(sim, k, col0))
        return
    if hit.stride(0) == 1 and hit.size(1) > 1:  # transposed: nonzero of the contiguous side
        c, r = hit.T.nonzero().unbind(1)
        order = torch.sort(r, stable=True).indices
        r, c = r[order], c[order]
    else:
        r, c = hit.nonzero().unbind(1)  # row-major: by row, then column
    counts = torch.bincount(r, minlength=rows)
    heavy = counts > _KNN_PRUNE_HITS
    if bool(heavy.any()):
        h = heavy.nonzero().flatten()
        _merge(best_val, best_idx, h + row0, *_block_topk(sim[h], k, col0))
        keep = (~heavy[r]).nonzero().flatten()
        r, c = r[keep], c[keep]
        counts = counts.masked_fill(heavy, 0)
    if r.numel() == 0:
        return
    most = int(counts.max())
    pos = torch.arange(r.numel(), device=r.device) - (torch.cumsum(counts, 0) - counts)[r]
    val = sim.new_full((rows, most), -math.inf)
    idx = torch.full((rows, most), best_idx.size(0), dtype=torch.long, device=sim.device)
    val[r, pos] = sim[r, c]
    idx[r, pos] = c + col0
    live = (counts > 0).nonzero().flatten()
    _merge(best_val, best_idx, live + row0, val[live], idx[live])


def _block_topk(sim: Tensor, k: int, col0: int) -> tuple[Tensor, Tensor]:
    r"""Top-:obj:`k` of every row by (value descending, column ascending)."""
    cols = sim.size(1)
    kk = min(k, cols)
    extra = kk < cols
    # one extra: a tie crosses the selection boundary iff the (k+1)-th value
    # equals the k-th; only those rows are redone, lowest column first
    val, idx = torch.topk(sim, kk + 1 if extra else kk, dim=1)
    if extra:
        bad = (val[:, kk] == val[:, kk - 1]).nonzero().flatten()
        val, idx = val[:, :kk].contiguous(), idx[:, :kk].contiguous()
        if bad.numel() > 0:
            s_b = sim[bad]
            k_b = val[bad, -1:]
            greater = s_b > k_b
            need = kk - greater.sum(1, keepdim=True)
            tied = s_b == k_b
            take = greater | (tied & (torch.cumsum(tied.long(), 1) <= need))
            cols_b = take.nonzero()[:, 1].view(-1, kk)
            val[bad] = s_b.gather(1, cols_b)
            idx[bad] = cols_b
    return val, idx + col0


def _merge(best_val: Tensor, best_idx: Tensor, rows: Tensor, val: Tensor, idx: Tensor) -> None:
    r"""Merges candidates into the running top-k of nodes :obj:`rows`, kept
    sorted by (value descending, index ascending)."""
    k = best_val.size(1)
    v = torch.cat([best_val[rows], val], 1)
    i = torch.cat([best_idx[rows], idx], 1)
    o = torch.sort(i, dim=1, stable=True).indices
    v, i = v.gather(1, o), i.gather(1, o)
    o = torch.sort(v, dim=1, descending=True, stable=True).indices[:, :k]
    best_val[rows] = v.gather(1, o)
    best_idx[rows] = i.gather(1, o)


def snippet_graph(
    features: Tensor,
    snippet_times: Tensor,
    *,
    temporal_offsets: Sequence[int] = (-1, 1),
    knn: int = 0,
    knn_exclude_temporal: bool = True,
    knn_method: str = "exact",
    knn_candidates: int = 16,
    weight: str | None = "relu_cos",
    video_id: str | None = None,
) -> Data:
    r"""The snippet graph of one video: temporal edges between snippets at
    fixed offsets and semantic :math:`k`-NN edges by feature similarity, as
    used by weakly- and click-supervised localisation (GRN, BackTAL).

    .. math::
        \mathcal{E}_m = \{ (t + k_m \rightarrow t) : 0 \le t + k_m < T \},
        \qquad
        \mathcal{E}_{knn} = \{ (u \rightarrow t) : u \in
        \operatorname{top-}\!k_u \cos(x_t, x_u) \}

    Edges follow PyG's :obj:`source_to_target` flow: :obj:`edge_index[1]` is
    the node that receives. For offset :math:`k_m` (the :math:`m`-th entry of
    :obj:`temporal_offsets`) node :math:`t` receives from :math:`t + k_m` with
    :obj:`edge_type` :math:`m`, so a temporal convolution
    :math:`h_t = \sum_m W_m x_{t + k_m}` gathers messages per edge type
    (missing neighbours at the video ends act as zero padding). kNN edges have
    :obj:`edge_type` :obj:`len(temporal_offsets)`; every node receives the same
    number :math:`k' = \min(k, \cdot)` of them, never from itself (and, with
    :obj:`knn_exclude_temporal`, never from its temporal neighbours), ties to
    the lower index. :obj:`edge_weight` is :math:`\mathrm{relu}(\cos(x_u,
    x_t))` or ones when :obj:`weight=None`. Edges are sorted by
    (target, type, similarity rank).

    Args:
        features (torch.Tensor): Snippet features :obj:`[T, D]`.
        snippet_times (torch.Tensor): Snippet centre times :obj:`[T]` (s).
        temporal_offsets (Sequence[int], optional): Distinct offsets :math:`k`.
            (default: :obj:`(-1, 1)`)
        knn (int, optional): Semantic neighbours per snippet; 0 disables
            them. (default: :obj:`0`)
        knn_exclude_temporal (bool, optional): Skip the temporal neighbours
            when choosing kNN edges. (default: :obj:`True`)
        knn_method (str, optional): :obj:`"exact"` (blocked all-pairs
            search, :math:`O(T^2 D)`) or :obj:`"approx"` (random projection,
            inverted-file candidate search and exact re-ranking of
            :obj:`knn_candidates` per snippet, see :func:`knn_edges`; much
            faster for long videos, with similarities still exact).
            (default: :obj:`"exact"`)
        knn_candidates (int, optional): Candidates re-ranked exactly per
            snippet by :obj:`knn_method="approx"`; :math:`\ge T` gives the
            exact result. (default: :obj:`16`)
        weight (str, optional): :obj:`"relu_cos"` or :obj:`None`.
            (default: :obj:`"relu_cos"`)
        video_id (str, optional): Named in error messages.
            (default: :obj:`None`)

    Returns:
        :class:`torch_geometric.data.Data` with :obj:`x`, :obj:`pos`,
        :obj:`edge_index`, :obj:`edge_weight`, :obj:`edge_type`.
    """
    w = where_prefix(video_id)
    check_features(features, video_id)
    t = features.size(0)
    check_snippet_times(snippet_times, t, video_id)
    offsets = [int(k) for k in temporal_offsets]
    if len(set(offsets)) != len(offsets):
        raise ValueError(f"{w}'temporal_offsets' must be distinct, got {offsets}")
    if knn < 0:
        raise ValueError(f"{w}'knn' must be >= 0, got {knn}")
    if knn_method not in ("exact", "approx"):
        raise ValueError(f"{w}'knn_method' must be 'exact' or 'approx', got {knn_method!r}")
    if knn_candidates < 1:
        raise ValueError(f"{w}'knn_candidates' must be >= 1, got {knn_candidates}")
    if weight not in ("relu_cos", None):
        raise ValueError(f"{w}'weight' must be 'relu_cos' or None, got {weight!r}")
    device = features.device
    ei_t, et_t = temporal_edges(t, offsets, device)
    parts_i, parts_t, parts_w = [ei_t], [et_t], []
    if weight == "relu_cos":  # chunked: no [E, D] temporaries
        parts_w.append(cosine_edge_weight(features, ei_t))
    if knn > 0:
        ei_k, sim = knn_edges(features, knn, offsets if knn_exclude_temporal else (),
                              method=knn_method, candidates=knn_candidates)
        parts_i.append(ei_k)
        parts_t.append(torch.full((ei_k.size(1),), len(offsets), dtype=torch.long,
                                  device=device))
        parts_w.append(sim)
    edge_index = torch.cat(parts_i, 1)
    edge_type = torch.cat(parts_t)
    if weight == "relu_cos":
        edge_weight = torch.cat(parts_w).clamp_min(0)
    else:
        edge_weight = features.new_ones(edge_index.size(1))
    order = torch.sort(edge_index[1] * (len(offsets) + 1) + edge_type, stable=True).indices
    return Data(
        x=features,
        pos=snippet_times,
        edge_index=edge_index[:, order],
        edge_weight=edge_weight[order],
        edge_type=edge_type[order],
    )
