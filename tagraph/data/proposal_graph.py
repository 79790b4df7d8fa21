r"""Proposal graphs (P-GCN): nodes are action proposals of one video."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torch_geometric.data import Data

from tagraph.data._graph_checks import (
    check_features,
    check_segments,
    check_snippet_times,
    expand_ranges,
    topk_per_group,
    where_prefix,
)
from tagraph.ops import range_max_pool, range_mean_pool, segment_iou
from tagraph.ops.csr import csr_tensor

__all__ = [
    "proposal_graph",
    "drop_gt_nodes",
    "proposal_edges",
    "segment_center_distance",
    "cosine_edge_weight",
    "snippet_ranges",
    "video_extent",
]

# Upper bound on candidate pairs materialised at once (memory stays
# O(chunk + N * k) however dense the proposals are).
_CHUNK_PAIRS = 1 << 20
# Length buckets (powers of _BUCKET_BASE below the longest proposal): candidate windows
# use the longest length of each bucket, so mixed scales do not blow them up.
_NUM_BUCKETS = 12
# Wider buckets mean fewer searchsorted passes but wider windows (more exact
# tests); 4 was the fastest of 2 / 3 / 4 / 8 on bench_graph's 5,000 proposals
# (edges about 36 ms vs 41-59 ms with 2). Any base gives the same, exact, edges.
_BUCKET_BASE = 4
# Relative slack added to every candidate window so float rounding can only
# enlarge it; the exact test on each candidate pair decides.
_SLACK = 1e-5


def segment_center_distance(a: Tensor, b: Tensor) -> Tensor:
    r"""Element-wise normalised centre distance of P-GCN (Eq. 3).

    .. math::
        d(p_i, p_j) = \frac{|c_i - c_j|}{\max(e_i, e_j) - \min(s_i, s_j)}

    Broadcasts like element-wise tensor arithmetic, so it serves both the
    dense reference (:obj:`a[:, None]`, :obj:`b[None]`) and candidate pairs
    with bit-identical results. Computed in float64: for float32 times the
    centres and their difference are then exact, so rankings are exact too.
    """
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    ca = (a[..., 0] + a[..., 1]) * 0.5
    cb = (b[..., 0] + b[..., 1]) * 0.5
    union = torch.maximum(a[..., 1], b[..., 1]) - torch.minimum(a[..., 0], b[..., 0])
    return (ca - cb).abs() / union


class _Gather:
    r"""Per-proposal columns for evaluating exact keys on candidate pairs with
    1-D :obj:`index_select` (much cheaper than row gathers of :obj:`[N, 2]`).

    The arithmetic is that of :func:`tagraph.ops.segment_iou` and
    :func:`segment_center_distance`, operation for operation, so keys agree
    bit for bit with a dense reference.
    """

    def __init__(self, seg: Tensor) -> None:
        self.s = seg[:, 0].contiguous()
        self.e = seg[:, 1].contiguous()
        self.len = (self.e - self.s).clamp_min(0)
        s64, e64 = self.s.to(torch.float64), self.e.to(torch.float64)
        self.s64, self.e64 = s64, e64
        self.c64 = (s64 + e64) * 0.5

    def iou(self, i: Tensor, j: Tensor) -> Tensor:
        inter = (torch.minimum(self.e.index_select(0, i), self.e.index_select(0, j))
                 - torch.maximum(self.s.index_select(0, i), self.s.index_select(0, j)))
        inter = inter.clamp_min(0)
        union = self.len.index_select(0, i) + self.len.index_select(0, j) - inter
        return inter / union

    def distance(self, i: Tensor, j: Tensor) -> Tensor:
        union = (torch.maximum(self.e64.index_select(0, i), self.e64.index_select(0, j))
                 - torch.minimum(self.s64.index_select(0, i), self.s64.index_select(0, j)))
        return (self.c64.index_select(0, i) - self.c64.index_select(0, j)).abs() / union


def video_extent(snippet_times: Tensor, duration: float | None = None) -> tuple[float, float]:
    r"""The time span :math:`[0, \mathrm{end}]` (s) a video's snippets cover.

    :obj:`end` is :obj:`duration` when given; otherwise the last snippet's
    centre plus half a snippet window, estimated as
    :math:`\max(t_0, \Delta / 2)` with :math:`t_0` the first centre
    (= window / 2 / fps) and :math:`\Delta` the snippet spacing.
    """
    if duration is not None:
        return 0.0, float(duration)
    if snippet_times.numel() == 0:
        return 0.0, 0.0
    t0 = float(snippet_times[0])
    t1 = float(snippet_times[-1])
    n = snippet_times.numel()
    spacing = (t1 - t0) / (n - 1) if n > 1 else 0.0
    return 0.0, t1 + max(t0, spacing / 2, 0.0)


def _spacing(snippet_times: Tensor) -> float:
    n = snippet_times.numel()
    if n > 1:
        return float(snippet_times[-1] - snippet_times[0]) / (n - 1)
    if n == 1:
        return 2 * abs(float(snippet_times[0]))
    return 0.0


def snippet_ranges(snippet_times: Tensor, segments: Tensor) -> tuple[Tensor, Tensor]:
    r"""Half-open snippet index ranges :obj:`[start, end)` of segments (s).

    A segment covers the snippets whose centre time lies in
    :math:`[s, e]` (both ends inclusive). A segment that contains no snippet
    centre takes the single snippet nearest to its own centre (ties to the
    earlier snippet), so no range is ever empty when :math:`T > 0`.

    Args:
        snippet_times (torch.Tensor): Non-decreasing snippet centre times
            :obj:`[T]`.
        segments (torch.Tensor): Segments :obj:`[N, 2]` in seconds.

    Returns:
        (torch.Tensor, torch.Tensor): :obj:`start` and :obj:`end` :obj:`[N]`.
    """
    t = snippet_times.contiguous()
    seg = segments.to(t.dtype)
    start = torch.searchsorted(t, seg[:, 0].contiguous(), side="left")
    end = torch.searchsorted(t, seg[:, 1].contiguous(), side="right")
    empty = end <= start
    if bool(empty.any()) and t.numel() > 0:
        centre = ((seg[:, 0] + seg[:, 1]) * 0.5).contiguous()
        right = torch.searchsorted(t, centre, side="left").clamp(max=t.numel() - 1)
        left = (right - 1).clamp_min(0)
        take_left = (centre - t[left]) <= (t[right] - centre)
        nearest = torch.where(take_left, left, right)
        start = torch.where(empty, nearest, start)
        end = torch.where(empty, nearest + 1, end)
    return start, end


class _Buckets:
    r"""Proposals grouped by length (powers of :obj:`_BUCKET_BASE` below the longest), each
    group sorted by start and by end, for :obj:`searchsorted` windows."""

    def __init__(self, seg: Tensor, length: Tensor) -> None:
        n = seg.size(0)
        lmax = float(length.max())
        level = torch.floor(torch.log2(length.to(torch.float64) / lmax)
                            / math.log2(_BUCKET_BASE)).to(torch.long)
        level = level.clamp(-(_NUM_BUCKETS - 1), 0)
        # Float rounding in log2 is harmless: each bucket's bound uses the exact
        # max/min length of the members it actually holds.
        self.ids: list[Tensor] = []
        self.by_start_ids: list[Tensor] = []
        self.starts: list[Tensor] = []
        self.by_end_ids: list[Tensor] = []
        self.ends: list[Tensor] = []
        self.by_centre_ids: list[Tensor] = []
        self.centres: list[Tensor] = []
        self.lmax: list[float] = []
        self.lmin: list[float] = []
        order = torch.sort(level, stable=True)
        counts = torch.bincount(-order.values, minlength=_NUM_BUCKETS).flip(0).tolist()
        # order.values ascending: most negative level (shortest) first
        chunks = torch.split(order.indices, [c for c in counts if c > 0]) if n else []
        for ids in chunks:
            s = seg[ids, 0]
            e = seg[ids, 1]
            so = torch.sort(s, stable=True)
            eo = torch.sort(e, stable=True)
            self.ids.append(ids)
            self.by_start_ids.append(ids[so.indices])
            self.starts.append(so.values.contiguous())
            self.by_end_ids.append(ids[eo.indices])
            self.ends.append(eo.values.contiguous())
            co = torch.sort((s + e) * 0.5, stable=True)
            self.by_centre_ids.append(ids[co.indices])
            self.centres.append(co.values.contiguous())
            self.lmax.append(float(length[ids].max()))
            self.lmin.append(float(length[ids].min()))


def _select(
    lo: list[Tensor],
    hi: list[Tensor],
    sorted_ids: list[Tensor],
    key_fn,
    k: int,
    descending: bool,
    n: int,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Top-:obj:`k` per node over candidate windows, chunked by node.

    :obj:`lo[b]`, :obj:`hi[b]` are :obj:`[N]` windows into bucket :obj:`b`'s
    sorted ids. :obj:`key_fn(i, j)` returns the exact key and a validity mask.
    """
    device = lo[0].device if lo else torch.device("cpu")
    empty = torch.zeros(0, dtype=torch.long, device=device)
    if not lo or n == 0 or k <= 0:
        return empty, empty, torch.zeros(0, device=device)
    nb = len(lo)
    sizes = torch.tensor([0] + [ids.numel() for ids in sorted_ids[:-1]], device=device)
    base = torch.cumsum(sizes, 0)
    cat_ids = torch.cat(sorted_ids)
    lo_all = torch.stack(lo, 1) + base  # [N, B], node-major
    hi_all = torch.maximum(torch.stack(hi, 1) + base, lo_all)
    per_node = (hi_all - lo_all).sum(1)
    cum = torch.cumsum(per_node, 0)
    total = int(cum[-1])
    out_i, out_j, out_key = [], [], []
    # chunk boundaries: nodes [a, b) with about _CHUNK_PAIRS candidates each
    bounds = [0]
    if total > _CHUNK_PAIRS:
        marks = torch.arange(_CHUNK_PAIRS, total, _CHUNK_PAIRS, device=device)
        cuts = torch.searchsorted(cum, marks, side="left") + 1
        bounds += torch.unique(cuts.clamp(max=n)).tolist()
    if bounds[-1] != n:
        bounds.append(n)
    for a, b in zip(bounds[:-1], bounds[1:]):
        q, p = expand_ranges(lo_all[a:b].reshape(-1), hi_all[a:b].reshape(-1))
        i = torch.div(q, nb, rounding_mode="floor") + a
        j = cat_ids[p]
        key, valid = key_fn(i, j)
        i, j, key = i[valid], j[valid], key[valid]
        keep = topk_per_group(i, key, j, k, descending)
        out_i.append(i[keep])
        out_j.append(j[keep])
        out_key.append(key[keep])
    return torch.cat(out_i), torch.cat(out_j), torch.cat(out_key)


def _contextual(seg: Tensor, seg64: Tensor, bk: _Buckets, thr: float, k: int):
    r"""For every node the :obj:`k` other proposals of highest tIoU > :obj:`thr`.

    Candidate bound. For overlapping :math:`p_i, p_j` the union minus the
    intersection is :math:`|s_i - s_j| + |e_i - e_j|`, so tIoU :math:`> \theta`
    gives :math:`|s_i - s_j| + |e_i - e_j| < r\,|p_i \cap p_j| \le r
    \min(L_i, L_j)` with :math:`r = (1-\theta)/\theta`; overlapping at all
    gives :math:`-L_j < s_j - s_i < L_i`. Also :math:`\theta L_i < L_j < L_i /
    \theta`. Centres then differ by :math:`|c_i - c_j| \le (|s_i - s_j| +
    |e_i - e_j|) / 2 < \frac{r}{2} \min(L_i, L_j)` (and by less than
    :math:`(L_i + L_j) / 2` for any overlap). With :math:`L_j` bounded by its
    bucket's longest length :math:`L^b`, the candidates in bucket :math:`b`
    are the :math:`c_j` within :math:`\min(\frac{r}{2} \min(L_i, L^b),
    \frac{L_i + L^b}{2})` of :math:`c_i` (centre-sorted buckets), found by
    :obj:`searchsorted`. Windows are computed in float64 with :math:`\theta`
    lowered by 64 ulps of the segments' dtype (tIoU computed from exact
    inputs is off by a few ulps at most), so rounding only widens them.
    """
    s, e = seg64[:, 0].contiguous(), seg64[:, 1].contiguous()
    length = e - s
    centre = (s + e) * 0.5
    thr_lo = max(0.0, thr - 64 * torch.finfo(seg.dtype).eps)
    r = (1 - thr_lo) / thr_lo if thr_lo > 0 else math.inf
    lo, hi = [], []
    for b in range(len(bk.centres)):
        lmax, lmin = bk.lmax[b], bk.lmin[b]
        half = (length + lmax) * 0.5  # overlap
        if math.isfinite(r):
            half = torch.minimum(half, length.clamp(max=lmax) * (r * 0.5))
        half = half + _SLACK * (length + lmax)
        l_b = torch.searchsorted(bk.centres[b], centre - half, side="left")
        h_b = torch.searchsorted(bk.centres[b], centre + half, side="right")
        if thr_lo > 0:
            ok = (lmax >= thr_lo * length * (1 - _SLACK)) & (lmin <= length / thr_lo * (1 + _SLACK))
            h_b = torch.where(ok, h_b, l_b)
        lo.append(l_b)
        hi.append(h_b)

    cols = _Gather(seg)

    def key_fn(i: Tensor, j: Tensor):
        iou = cols.iou(i, j)
        return iou, (iou > thr) & (i != j)

    return _select(lo, hi, bk.by_centre_ids, key_fn, k, True, seg.size(0))


def _surrounding(seg: Tensor, seg64: Tensor, bk: _Buckets, thr: float, k: int):
    r"""For every node the :obj:`k` disjoint proposals (tIoU = 0) of smallest
    :math:`d < \mathrm{thr}` (P-GCN Eq. 3), ties to the lower index.

    The condition. For disjoint :math:`p_i` before :math:`p_j` with gap
    :math:`g = s_j - e_i \ge 0`: :math:`|c_j - c_i| = L_i/2 + g + L_j/2` and
    the union span is :math:`L_i + g + L_j`, so

    .. math::
        d = \tfrac12 \Bigl(1 + \frac{g}{L_i + L_j + g}\Bigr) \in [\tfrac12, 1).

    Every disjoint pair of positive-length proposals meets :math:`d < 1`: the
    paper's threshold 1 only says "disjoint", and "nearest" means the smallest
    relative gap :math:`g / (L_i + L_j)` (touching proposals first, d = 1/2).
    A far but long proposal can be nearer than a close short one, so plain
    start-sorted windows are not enough.

    The candidate bound. :math:`d \le B \iff g \le \frac{\rho}{1 - \rho}
    (L_i + L_j)` with :math:`\rho = 2B - 1`. (1) In every length bucket and
    on both sides the :obj:`k` proposals with the smallest gap are scored;
    the :obj:`k`-th smallest of those :math:`d` is an upper bound :math:`B`
    of the true :obj:`k`-th smallest (it is the :obj:`k`-th of a subset; if
    fewer than :obj:`k` exist, those are all disjoint proposals and
    :math:`B = \infty`). (2) Every proposal of the true top-:obj:`k` has
    :math:`d \le B`, hence a gap :math:`g \le \frac{\rho}{1-\rho}(L_i +
    L^b)` in its bucket :math:`b`: a :obj:`searchsorted` window on starts
    (right side) or ends (left side). Exact :math:`d` on the window's pairs
    and a segment top-k give the answer, identical to the dense reference.
    :math:`d` is evaluated in float64 (:func:`segment_center_distance`); its
    rounding error, at most :math:`16 \epsilon \max|t| / L_i`, is added to
    :math:`B` so the window can only grow.
    """
    s, e = seg64[:, 0].contiguous(), seg64[:, 1].contiguous()
    length = e - s
    n = seg.size(0)
    nb = len(bk.starts)
    # (1) initial candidates: the k nearest by gap on each side of each bucket
    ar = torch.arange(k, device=seg.device)
    init_j, init_ok = [], []
    right_pos, left_pos = [], []
    for b in range(nb):
        m = bk.starts[b].numel()
        rp = torch.searchsorted(bk.starts[b], e, side="left")  # first s_j >= e_i
        lp = torch.searchsorted(bk.ends[b], s, side="right")  # one past the last e_j <= s_i
        right_pos.append(rp)
        left_pos.append(lp)
        pr = rp[:, None] + ar
        pl = lp[:, None] - 1 - ar
        init_ok += [pr < m, pl >= 0]
        init_j += [bk.by_start_ids[b][pr.clamp(max=m - 1)], bk.by_end_ids[b][pl.clamp_min(0)]]
    cj = torch.cat(init_j, 1)  # [N, 2 k B]
    cok = torch.cat(init_ok, 1)
    d0 = segment_center_distance(seg[:, None, :], seg[cj])
    d0 = torch.where(cok, d0, torch.full_like(d0, math.inf))
    if d0.size(1) >= k:
        bound = torch.topk(d0, k, dim=1, largest=False).values[:, -1]
    else:
        bound = torch.full((n,), math.inf, dtype=torch.float64, device=seg.device)
    bound = bound.clamp(max=thr)
    scale = float(seg64.abs().max())
    bound = bound + 16 * torch.finfo(torch.float64).eps * scale / length + 1e-12
    rho = 2 * bound - 1
    finite = rho < 1 - 1e-9
    factor = torch.where(finite, rho.clamp_min(0) / (1 - rho).clamp_min(1e-9),
                         torch.full_like(rho, math.inf))
    factor = factor * (1 + _SLACK) + _SLACK
    lo, hi, ids = [], [], []
    for b in range(nb):
        reach = factor * (length + bk.lmax[b])
        # right side: s_j in [e_i, e_i + reach]
        h = torch.searchsorted(bk.starts[b], e + reach, side="right")
        lo.append(right_pos[b])
        hi.append(torch.maximum(h, right_pos[b]))
        ids.append(bk.by_start_ids[b])
        # left side: e_j in [s_i - reach, s_i]
        lw = torch.searchsorted(bk.ends[b], s - reach, side="left")
        lo.append(torch.minimum(lw, left_pos[b]))
        hi.append(left_pos[b])
        ids.append(bk.by_end_ids[b])

    cols = _Gather(seg)

    def key_fn(i: Tensor, j: Tensor):
        d = cols.distance(i, j)
        return d, d < thr

    return _select(lo, hi, ids, key_fn, k, False, n)


def proposal_edges(
    segments: Tensor,
    *,
    contextual_iou: float = 0.7,
    max_contextual: int = 8,
    surrounding_distance: float = 1.0,
    max_surrounding: int = 2,
) -> tuple[Tensor, Tensor]:
    r"""Contextual and surrounding edges of the P-GCN proposal graph.

    See :func:`proposal_graph`. Returns :obj:`edge_index` :obj:`[2, E]`
    (row 0 = source = neighbour, row 1 = target = the node that receives) and
    :obj:`edge_type` :obj:`[E]`, sorted by (target, type, rank). Runs in
    :math:`O(N \log N + C)` for :math:`C` candidate pairs, never :math:`N^2`
    memory. Segments must have positive length.
    """
    check_segments(segments, None, "segments", None, False)
    n = segments.size(0)
    empty = torch.zeros(2, 0, dtype=torch.long, device=segments.device)
    if n == 0:
        return empty, torch.zeros(0, dtype=torch.long, device=segments.device)
    seg = segments if segments.is_floating_point() else segments.to(torch.get_default_dtype())
    seg = seg.contiguous()
    seg64 = seg.to(torch.float64)
    bk = _Buckets(seg64, seg64[:, 1] - seg64[:, 0])
    none = torch.zeros(0, dtype=torch.long, device=seg.device)
    ci, cj = none, none
    if max_contextual > 0:
        ci, cj, _ = _contextual(seg, seg64, bk, float(contextual_iou), int(max_contextual))
    si, sj = none, none
    if max_surrounding > 0:
        si, sj, _ = _surrounding(seg, seg64, bk, float(surrounding_distance),
                                 int(max_surrounding))
    dst = torch.cat([ci, si])
    src = torch.cat([cj, sj])
    etype = torch.cat([torch.zeros_like(ci), torch.ones_like(si)])
    # both blocks are sorted by (target, rank); a stable sort by target * 2 + type
    order = torch.sort(dst * 2 + etype, stable=True).indices
    return torch.stack([src[order], dst[order]]), etype[order]


def cosine_edge_weight(x: Tensor, edge_index: Tensor) -> Tensor:
    r"""Edge weights :math:`\mathrm{relu}(\cos(x_j, x_i))` for every edge.

    Computed as :math:`x_j \cdot x_i / (\max(\|x_j\|, \epsilon)
    \max(\|x_i\|, \epsilon))`; zero vectors get weight 0. The dot products
    are one sampled dense-dense product (:func:`torch.sparse.sampled_addmm`,
    an SDDMM over the edges as a CSR pattern: no gathered :obj:`[E, D]` rows)
    for float32 / float64 on CPU and CUDA when the edges are distinct;
    otherwise chunks of gathered rows of a few MB.
    """
    e = edge_index.size(1)
    if e == 0:
        return x.new_empty(0)
    inv = 1.0 / torch.linalg.vector_norm(x, dim=1).clamp_min(1e-12)
    src, dst = edge_index[0], edge_index[1]
    dots = _edge_dots_sddmm(x, src, dst)
    if dots is None:
        dots = x.new_empty(e)
        chunk = max(1, (1 << 19) // max(1, x.size(1)))
        for a in range(0, e, chunk):
            xs = x.index_select(0, src[a:a + chunk])
            xd = x.index_select(0, dst[a:a + chunk])
            torch.linalg.vecdot(xs, xd, out=dots[a:a + chunk])
    dots.mul_(inv[src] * inv[dst])
    return dots.clamp_min_(0)


def _edge_dots_sddmm(x: Tensor, src: Tensor, dst: Tensor) -> Tensor | None:
    r""":math:`x_{src} \cdot x_{dst}` per edge via a CSR SDDMM, or :obj:`None`
    where that does not apply (other dtypes or devices, repeated edges).

    Rows that are every :math:`m`-th row of a contiguous matrix (e.g. the body
    columns of :obj:`x_ext`, a view with row stride :math:`3D`) are read in
    place: the pattern addresses rows :math:`m i` of that matrix, so no
    contiguous copy of :obj:`x` is made."""
    if (x.dtype not in (torch.float32, torch.float64) or x.device.type not in ("cpu", "cuda")
            or x.requires_grad or x.dim() != 2):
        return None
    n, d = x.shape
    step = 1
    if n > 1 and d > 0 and x.stride(1) == 1 and x.stride(0) % d == 0 and x.stride(0) > 0:
        step = x.stride(0) // d
        base = x.as_strided(((n - 1) * step + 1, d), (d, 1))  # x[i] = base[step * i]
    else:
        base = x.contiguous()
    m = base.size(0)
    key = dst * n + src
    order = torch.sort(key).indices
    key = key[order]
    if bool((key[1:] == key[:-1]).any()):
        return None  # a CSR pattern has distinct entries
    rows = dst[order] * step
    cols = src[order] * step
    crow = torch.zeros(m + 1, dtype=torch.long, device=x.device)
    torch.cumsum(torch.bincount(rows, minlength=m), 0, out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        pattern = csr_tensor(crow, cols, x.new_zeros(cols.numel()), (m, m),
                                          check_invariants=False)
        vals = torch.sparse.sampled_addmm(pattern, base, base.T, beta=0.0).values()
    out = torch.empty_like(vals)
    out[order] = vals
    return out


def proposal_graph(
    features: Tensor,
    snippet_times: Tensor,
    segments: Tensor,
    *,
    gt_segments: Tensor | None = None,
    gt_labels: Tensor | None = None,
    contextual_iou: float = 0.7,
    max_contextual: int = 8,
    surrounding_distance: float = 1.0,
    max_surrounding: int = 2,
    context_ratio: float = 0.5,
    pooling: str = "max",
    fg_iou: float = 0.7,
    duration: float | None = None,
    tolerance: float | None = None,
    video_id: str | None = None,
    add_gt: bool = False,
) -> Data:
    r"""The proposal graph of one video, from the `"Graph Convolutional
    Networks for Temporal Action Localization"
    <https://arxiv.org/abs/1909.03252>`_ paper (P-GCN).

    Nodes are proposals :math:`p_i = (s_i, e_i)`. A node receives

    .. math::
        \text{contextual edges from } \{ p_j : \mathrm{tIoU}(p_i, p_j) >
        \theta_{ctx} \} \quad \text{(Eq. 2)},

        \text{surrounding edges from } \{ p_j : \mathrm{tIoU}(p_i, p_j) = 0,\
        d(p_i, p_j) = \frac{|c_i - c_j|}{U(p_i, p_j)} < \theta_{sur} \}
        \quad \text{(Eq. 3)},

    keeping the :obj:`max_contextual` of highest tIoU and the
    :obj:`max_surrounding` of smallest :math:`d` (the caps of the official
    code, which samples 8 and 2); ties go to the lower proposal index.
    :math:`U` is the union span :math:`\max(e) - \min(s)`. For disjoint
    proposals :math:`d \in [\frac12, 1)`, so the paper's
    :math:`\theta_{sur} = 1` admits every disjoint proposal and "nearest"
    ranks them by relative gap :math:`g / (L_i + L_j)`. Edge weights are
    :math:`\mathrm{relu}(\cos(x_i, x_j))`. No self-loops (layers add the node
    itself). Edges follow PyG's :obj:`source_to_target` flow:
    :obj:`edge_index[0]` is the neighbour :math:`j`, :obj:`edge_index[1]` the
    node :math:`i` that receives; in-degree is at most
    :obj:`max_contextual + max_surrounding` and the graph is not symmetrised.
    Time and memory are :math:`O(N \log N + E)` for realistic proposal sets
    (length-bucketed :obj:`searchsorted` candidate windows, chunked exact
    tests, a segment top-k), never an :math:`N \times N` matrix.

    .. note::
        With thousands of proposals and 2048-d features, :obj:`x_ext` (which
        :obj:`x` shares) is large (5,000 proposals: 123 MB), and on Linux the
        kernel's page faults on that fresh memory are a large part of the
        build time (57 of 176 ms in :obj:`benchmarks/bench_graph.py`). Two
        environment variables, set before Python starts, remove most of it
        when many graphs are built in a loop: :obj:`MALLOC_MMAP_THRESHOLD_`
        and :obj:`MALLOC_TRIM_THRESHOLD_` set to :obj:`4294967296` make glibc
        reuse freed memory (the process keeps its peak heap), and
        :obj:`THP_MEM_ALLOC_ENABLE=1` makes PyTorch request transparent huge
        pages (where :obj:`/sys/kernel/mm/transparent_hugepage/enabled` is
        :obj:`madvise` or :obj:`always`; its gain varies with the kernel's
        free huge pages).

    Features: the snippets of a segment are those whose centre time lies in
    :math:`[s, e]`; a segment holding none takes the snippet nearest to its
    centre (never empty). :obj:`x` pools the body; :obj:`x_ext` concatenates
    the start context :math:`[s - rL, s]`, the body and the end context
    :math:`[e, e + rL]` (:math:`r` = :obj:`context_ratio`, clipped to the
    video), as in SSN / P-GCN. :obj:`x` is the body columns of :obj:`x_ext`
    (a strided view sharing its memory, so a graph holds and saves
    :math:`3D`, not :math:`4D`, floats per node): clone it before editing it
    in place.

    Targets (when :obj:`gt_segments` is given), following SSN / P-GCN: each
    proposal is matched to the ground truth of highest tIoU (ties to the
    lower index). :obj:`iou` is that tIoU, :obj:`overlap_self` the fraction of
    the proposal it covers, :obj:`matched_label` its class + 1 (0 if no ground
    truth overlaps), :obj:`y` = :obj:`matched_label` if :obj:`iou` >
    :obj:`fg_iou` else 0 (background), and :obj:`reg_target` =
    :math:`((c_{gt} - c) / L, \log(L_{gt} / L))` (zero where :obj:`iou` = 0).
    SSN's incomplete / background sampling uses :obj:`iou` and
    :obj:`overlap_self` (e.g. incomplete: iou < 0.3 and overlap_self > 0.7).

    Args:
        features (torch.Tensor): Snippet features :obj:`[T, D]`.
        snippet_times (torch.Tensor): Snippet centre times :obj:`[T]` (s),
            non-decreasing.
        segments (torch.Tensor): Proposals :obj:`[N, 2]` (start, end) in
            seconds, :math:`e > s`.
        gt_segments (torch.Tensor, optional): Ground truth :obj:`[M, 2]` (s).
            (default: :obj:`None`)
        gt_labels (torch.Tensor, optional): 0-based classes :obj:`[M]`.
            (default: :obj:`None`)
        contextual_iou (float, optional): :math:`\theta_{ctx}`, in
            :math:`[0, 1)`. (default: :obj:`0.7`)
        max_contextual (int, optional): Contextual in-edges per node.
            (default: :obj:`8`)
        surrounding_distance (float, optional): :math:`\theta_{sur}`.
            (default: :obj:`1.0`)
        max_surrounding (int, optional): Surrounding in-edges per node.
            (default: :obj:`2`)
        context_ratio (float, optional): Context length on each side, as a
            fraction of the proposal length. (default: :obj:`0.5`)
        pooling (str, optional): :obj:`"max"` or :obj:`"mean"`.
            (default: :obj:`"max"`)
        fg_iou (float, optional): :obj:`y` is the class when the best tIoU
            exceeds it. (default: :obj:`0.7`)
        duration (float, optional): Video length (s); defaults to the last
            snippet centre plus half a snippet. (default: :obj:`None`)
        tolerance (float, optional): How far (s) a segment may reach past
            :math:`[0, \mathrm{duration}]` before it is an error; defaults to
            one snippet spacing. (default: :obj:`None`)
        video_id (str, optional): Named in error messages.
            (default: :obj:`None`)
        add_gt (bool, optional): Appends the ground-truth segments to the
            proposals as extra nodes (after the :obj:`N` proposals, marked by
            a boolean node attribute :obj:`is_gt`), with targets like any
            proposal and the in-edges of their neighbourhood among all
            nodes restricted to proposal sources (a ground truth overlapping
            another one may so get fewer than :obj:`max_contextual`); they
            send no edges, so the proposals' part of the graph equals
            the graph built without them (:func:`drop_gt_nodes` recovers it
            exactly). SSN / P-GCN train with the ground truth as foreground
            samples (``gt_as_fg``). For training graphs only: never evaluate
            on a graph holding its ground truth.
            (default: :obj:`False`)

    Returns:
        :class:`torch_geometric.data.Data` with :obj:`x` :obj:`[N, D]`,
        :obj:`x_ext` :obj:`[N, 3D]`, :obj:`segments`, :obj:`edge_index`,
        :obj:`edge_weight`, :obj:`edge_type` (0 contextual, 1 surrounding)
        and, with ground truth, :obj:`y`, :obj:`matched_label`, :obj:`iou`,
        :obj:`overlap_self`, :obj:`reg_target` :obj:`[N, 2]`,
        :obj:`gt_segments`, :obj:`gt_labels`.
    """
    w = where_prefix(video_id)
    check_features(features, video_id)
    t, d = features.shape
    check_snippet_times(snippet_times, t, video_id)
    if not 0 <= contextual_iou < 1:
        raise ValueError(f"{w}'contextual_iou' must be in [0, 1), got {contextual_iou}")
    if max_contextual < 0 or max_surrounding < 0:
        raise ValueError(f"{w}'max_contextual' and 'max_surrounding' must be >= 0")
    if context_ratio < 0:
        raise ValueError(f"{w}'context_ratio' must be >= 0, got {context_ratio}")
    if pooling not in ("max", "mean"):
        raise ValueError(f"{w}'pooling' must be 'max' or 'mean', got {pooling!r}")
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"{w}'duration' must be a finite number >= 0, got {duration}")
    lo, hi = video_extent(snippet_times, duration)
    tol = _spacing(snippet_times) + 1e-6 * max(1.0, hi) if tolerance is None else tolerance
    check_segments(segments, video_id, "segments", (lo - tol, hi + tol), False)
    num_proposals = segments.size(0)
    if add_gt:
        if gt_segments is None:
            raise ValueError(f"{w}'add_gt=True' needs 'gt_segments'")
        check_segments(gt_segments, video_id, "gt_segments", None, True)
        gt_nodes = gt_segments.to(segments.dtype).clamp(lo, hi)  # nodes lie in the video
        gt_nodes = gt_nodes[(gt_nodes[:, 1] > gt_nodes[:, 0]).nonzero().view(-1)]
        segments = torch.cat([segments.to(gt_nodes.device), gt_nodes])
    n = segments.size(0)
    if n > 0 and t == 0:
        raise ValueError(f"{w}'features' has no snippets but there are {n} proposals")
    dtype = features.dtype
    seg = segments.to(dtype=dtype, device=features.device).contiguous()

    # --- features ------------------------------------------------------------
    length = seg[:, 1] - seg[:, 0]
    ctx = context_ratio * length
    # clipped to the video; a proposal reaching past it (within tolerance) gets
    # an empty context interval, which pools its nearest snippet
    start_ctx = torch.stack([torch.minimum((seg[:, 0] - ctx).clamp_min(lo), seg[:, 0]),
                             seg[:, 0]], 1)
    end_ctx = torch.stack([seg[:, 1],
                           torch.maximum((seg[:, 1] + ctx).clamp_max(hi), seg[:, 1])], 1)
    times = snippet_times.to(dtype=dtype, device=features.device)
    # query 3 i + p is part p of proposal i: the pooled rows land in x_ext's
    # memory directly, with no [3N, D] temporary
    a, b = snippet_ranges(times, torch.stack([start_ctx, seg, end_ctx], 1).view(-1, 2))
    x_ext = features.new_empty(n, 3 * d)
    pool = range_max_pool if pooling == "max" else range_mean_pool
    pool(features, a, b, out=x_ext.view(3 * n, d))
    # the body part is x itself: a view, not a copy (a quarter less memory to
    # write, hold and save; torch.save stores the shared storage once)
    x = x_ext[:, d:2 * d]

    # --- edges ---------------------------------------------------------------
    edge_kw = dict(contextual_iou=contextual_iou, max_contextual=max_contextual,
                   surrounding_distance=surrounding_distance, max_surrounding=max_surrounding)
    edge_index, edge_type = proposal_edges(seg[:num_proposals], **edge_kw)
    if add_gt and n > num_proposals:
        # ground-truth nodes receive edges from proposals but send none, so the
        # proposals' graph is exactly the one built without them
        ei_all, et_all = proposal_edges(seg, **edge_kw)
        keep = ((ei_all[1] >= num_proposals) & (ei_all[0] < num_proposals)).nonzero().view(-1)
        edge_index = torch.cat([edge_index, ei_all.index_select(1, keep)], 1)
        edge_type = torch.cat([edge_type, et_all.index_select(0, keep)])
    edge_weight = cosine_edge_weight(x, edge_index)

    data = Data(x=x, x_ext=x_ext, segments=seg, edge_index=edge_index,
                edge_weight=edge_weight, edge_type=edge_type)
    if add_gt:
        data.is_gt = torch.arange(n, device=seg.device) >= num_proposals

    # --- targets -------------------------------------------------------------
    if gt_segments is not None:
        check_segments(gt_segments, video_id, "gt_segments", None, True)
        m = gt_segments.size(0)
        gts = gt_segments.to(dtype=dtype, device=features.device)
        if gt_labels is None:
            labels = torch.zeros(m, dtype=torch.long, device=features.device)
        else:
            labels = torch.as_tensor(gt_labels, device=features.device)
            if labels.dim() != 1 or labels.numel() != m:
                raise ValueError(
                    f"{w}'gt_labels' must have shape [{m}] to match 'gt_segments', got "
                    f"{list(labels.shape)}")
            if labels.is_floating_point() or (m > 0 and bool((labels < 0).any())):
                raise ValueError(f"{w}'gt_labels' must be non-negative integer class ids")
            labels = labels.long()
        data.update(_targets(seg, gts, labels, fg_iou))
        data.gt_segments = gts
        data.gt_labels = labels
    elif gt_labels is not None:
        raise ValueError(f"{w}'gt_labels' given without 'gt_segments'")
    return data


def drop_gt_nodes(data: Data) -> Data:
    r"""The graph without the ground-truth nodes that
    :obj:`proposal_graph(..., add_gt=True)` appended (identical to the graph
    built with :obj:`add_gt=False`); a graph without :obj:`is_gt` is
    returned as is."""
    if "is_gt" not in data:
        return data
    # per-video tensors whose first size could equal the node count by chance
    video_level = {k: data[k] for k in ("gt_segments", "gt_labels", "video_label")
                   if k in data}
    slim = data.clone()
    for k in video_level:
        del slim[k]
    out = slim.subgraph((~data.is_gt).nonzero().view(-1))
    del out.is_gt
    for k, v in video_level.items():
        out[k] = v
    return out


def _targets(seg: Tensor, gts: Tensor, labels: Tensor, fg_iou: float) -> dict[str, Tensor]:
    n, m = seg.size(0), gts.size(0)
    if m == 0 or n == 0:
        z = seg.new_zeros(n)
        zl = torch.zeros(n, dtype=torch.long, device=seg.device)
        return dict(y=zl, matched_label=zl.clone(), iou=z, overlap_self=z.clone(),
                    reg_target=seg.new_zeros(n, 2))
    # [N, M] with M the ground-truth count of one video (tens): not N x N.
    iou_all = segment_iou(seg, gts)
    iou, best = iou_all.max(dim=1)  # first maximal index on ties
    g = gts[best]
    inter = (torch.minimum(seg[:, 1], g[:, 1]) - torch.maximum(seg[:, 0], g[:, 0])).clamp_min(0)
    length = seg[:, 1] - seg[:, 0]
    overlap_self = inter / length
    hit = iou > 0
    matched = torch.where(hit, labels[best] + 1, torch.zeros_like(best))
    y = torch.where(iou > fg_iou, matched, torch.zeros_like(matched))
    g_len = (g[:, 1] - g[:, 0]).clamp_min(torch.finfo(seg.dtype).tiny)
    loc = ((g[:, 0] + g[:, 1]) * 0.5 - (seg[:, 0] + seg[:, 1]) * 0.5) / length
    size = torch.log(g_len / length)
    reg = torch.stack([loc, size], 1) * hit[:, None].to(seg.dtype)
    return dict(y=y, matched_label=matched, iou=iou, overlap_self=overlap_self, reg_target=reg)
