"""Graph-builder benchmark: fast builders vs brute-force references, with
the machine's floors (issue #3 targets: proposal_graph <= 50 ms, snippet_graph
T = 10,000, knn = 10 <= 200 ms, on a 2-core CPU).

    PYTHONPATH=. python benchmarks/bench_graph.py [--repeats 5] [--threads 2] [--quick]
    PYTHONPATH=. python benchmarks/bench_graph.py --against ../old-checkout [--cases ...]

Each case runs in its own subprocess: the time is the median of ``--repeats``
runs after one warm-up (the slow brute-force references: one run), and the
peak memory is the process's peak resident set (``VmHWM``, reset after the
inputs are built) minus its resident set before the first run, so it counts
every allocation torch makes (``tracemalloc`` does not see them). Rows:

* ``proposal_graph``: 5,000 proposals on a 2,000-snippet, 2048-d video (edges,
  relu-cos weights, max-pooled ``x`` [N, D] and ``x_ext`` [N, 3D]); proposals
  are a TAG/BSN-like mix: log-uniform lengths 0.3-60 s, uniform centres,
  clipped. Reference: the brute-force builder (dense N x N edges, a loop of
  per-proposal max-pools, dense cosine). ``output_floor``: allocating and
  writing the 123 MB of ``x_ext`` (``x`` is a view of its body columns) and
  nothing else -- what any builder pays. The ``[THP]`` rows rerun both with
  ``THP_MEM_ALLOC_ENABLE=1`` (PyTorch then asks for transparent huge pages on
  large CPU allocations; only where ``/sys/kernel/mm/transparent_hugepage/
  enabled`` is ``madvise`` or ``always``): page faults of fresh output memory
  are most of the floor. The ``[heap]`` rows set ``MALLOC_MMAP_THRESHOLD_`` and
  ``MALLOC_TRIM_THRESHOLD_`` to 4 GiB: glibc then serves large tensors from
  its heap and keeps freed memory, so a loop that builds, saves and drops
  graphs (a dataset's ``process()``) reuses memory that is already faulted in
  (the process keeps its peak heap).
* ``proposal_edges`` / ``proposal_features``: the two halves, against the
  dense edge reference and the per-proposal loop.
* ``snippet_graph``: T = 10,000, knn = 10 (D = 2048 and 256), exact and
  ``knn_method="approx"``, against the full T x T similarity matrix + topk.
  ``gemm_floor``: one T x D by D x T float32 GEMM; the exact blocked search
  does half of it (T^2 D / 2 multiply-adds, the similarity being symmetric),
  so half this row is its lower bound on this machine.
* ``--against CHECKOUT``: A/B mode, the ``--cases`` timed with another
  checkout's package and this one's in alternating subprocesses.
* ``knn recall``: recall@10 of ``approx`` vs ``exact`` (the fraction of exact
  neighbours found) and the mean cosine of the chosen neighbours relative to
  the exact ones, on SyntheticTAL features (a 10,000-snippet video of the
  generator: low-rank class / scene structure plus white noise that dominates
  the cosine), temporally smooth random features, i.i.d. Gaussian features and
  grouped near-duplicates (each snippet has 10 clear neighbours).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

N_PROPOSALS, N_SNIPPETS, DIM = 5000, 2000, 2048
T_SNIPPETS, KNN = 10_000, 10


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> float:
    """Resets the peak-RSS mark (Linux: ``5 > /proc/self/clear_refs``) and returns
    the current RSS, so input-creation temporaries do not mask the peak; falls
    back to ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _video(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    times = (torch.arange(N_SNIPPETS, dtype=torch.float32) * 4 + 8) / 25
    duration = float(times[-1]) + 0.32
    feats = torch.randn(N_SNIPPETS, DIM, generator=g)
    length = 10 ** (torch.rand(N_PROPOSALS, generator=g) * 2.3 - 0.5)  # 0.3 .. 60 s
    centre = torch.rand(N_PROPOSALS, generator=g) * duration
    seg = torch.stack([centre - length / 2, centre + length / 2], 1).clamp(0, duration)
    seg = seg[seg[:, 1] - seg[:, 0] > 0.05]
    return feats, times, seg, duration


def dense_edges(seg, thr_c=0.7, k_c=8, thr_s=1.0, k_s=2):
    """O(N^2) reference: dense matrices, masked top-k per row."""
    from tagraph.data.proposal_graph import segment_center_distance
    from tagraph.ops import segment_iou

    n = seg.size(0)
    iou = segment_iou(seg, seg)
    iou.fill_diagonal_(0)
    key = torch.where(iou > thr_c, iou, torch.full_like(iou, -1.0))
    v, j = torch.topk(key, min(k_c, n), dim=1)
    ctx = torch.stack([j[v > 0], torch.arange(n)[:, None].expand_as(j)[v > 0]])
    d = segment_center_distance(seg[:, None], seg[None])
    d = torch.where((iou == 0) & (d < thr_s), d, torch.full_like(d, float("inf")))
    d.fill_diagonal_(float("inf"))
    v, j = torch.topk(d, min(k_s, n), dim=1, largest=False)
    ok = torch.isfinite(v)
    sur = torch.stack([j[ok], torch.arange(n)[:, None].expand_as(j)[ok]])
    return torch.cat([ctx, sur], 1)


def loop_features(feats, times, seg):
    """Plain-loop reference: one max-pool per proposal and part."""
    from tagraph.data import snippet_ranges

    length = seg[:, 1] - seg[:, 0]
    parts = [torch.stack([(seg[:, 0] - length / 2).clamp_min(0), seg[:, 0]], 1), seg,
             torch.stack([seg[:, 1], seg[:, 1] + length / 2], 1)]
    outs = []
    for part in parts:
        a, b = snippet_ranges(times, part)
        outs.append(torch.stack([feats[s:e].max(0).values for s, e in zip(a.tolist(), b.tolist())]))
    return outs[1], torch.cat(outs, 1)


def dense_knn(x, k):
    xn = torch.nn.functional.normalize(x, dim=1)
    sim = xn @ xn.T
    sim.fill_diagonal_(-2)
    idx = torch.arange(x.size(0))
    sim[idx[1:], idx[:-1]] = -2
    sim[idx[:-1], idx[1:]] = -2
    return torch.topk(sim, k, dim=1)


def dense_cosine(x, edge_index):
    xn = torch.nn.functional.normalize(x, dim=1)
    return (xn[edge_index[0]] * xn[edge_index[1]]).sum(1).clamp_min(0)


def _snippet_features(dim: int, kind: str = "smooth", t: int = T_SNIPPETS):
    g = torch.Generator().manual_seed(1)
    if kind == "smooth":  # temporally smooth: neighbours similar, as real I3D features
        return torch.randn(t, dim, generator=g).cumsum(0) / 30 + torch.randn(t, dim, generator=g)
    if kind == "gaussian":
        return torch.randn(t, dim, generator=g)
    if kind == "grouped":  # groups of 11 near-duplicates scattered over the video
        groups = t // 11 + 1
        label = torch.arange(groups).repeat_interleave(11)[:t][torch.randperm(t, generator=g)]
        noise = torch.randn(t, dim, generator=g)
        return torch.randn(groups, dim, generator=g)[label] + 0.05 * noise
    if kind == "synthetic":
        return _synthetic_video(dim, t)
    raise ValueError(kind)


def _synthetic_video(dim: int, t: int):
    """One long SyntheticTAL video (the generator's feature model)."""
    import glob
    import tempfile

    import numpy as np

    from tagraph.data.synthetic import generate_synthetic_tal, synthetic_config

    secs = (t + 2) * 16 / 30.0
    cfg = synthetic_config("full", num_train=1, num_test=0, feature_dim=dim, duration_min=secs,
                           duration_max=secs, duration_median=secs, duration_sigma=0.01)
    root = os.path.join(tempfile.gettempdir(), "tagraph_bench_graph")
    files = generate_synthetic_tal(root, cfg, seed=0)
    path = sorted(glob.glob(os.path.join(str(files.feature_dir), "*.npy")))[0]
    return torch.from_numpy(np.load(path)[:t].copy())


def _case(name: str, repeats: int):
    from tagraph.data import proposal_edges, proposal_graph, snippet_graph

    feats, times, seg, duration = _video()
    extra = {"proposals": int(seg.size(0))}
    if name.startswith("snippet"):
        # snippet_d2048_{exact,approx,dense}
        _, dtag, method = name.split("_")
        x = _snippet_features(int(dtag[1:]))
        t = (torch.arange(T_SNIPPETS, dtype=torch.float32) * 4 + 8) / 25
        if method == "dense":
            def fn():
                return dense_knn(x, KNN)
        else:
            def fn():
                return snippet_graph(x, t, knn=KNN, knn_method=method)
    elif name.startswith("gemm"):
        x = _snippet_features(int(name.split("_")[1][1:]))

        def fn():
            return x @ x.T
        extra["gmac"] = T_SNIPPETS ** 2 * x.size(1) / 1e9
    elif name.startswith("recall"):
        return _recall(name.split("_")[1], repeats)
    elif name == "proposal_graph":
        def fn():
            return proposal_graph(feats, times, seg, duration=duration)
    elif name == "proposal_graph_bruteforce":
        def fn():
            ei = dense_edges(seg)
            x, x_ext = loop_features(feats, times, seg)
            return ei, x, x_ext, dense_cosine(x, ei)
    elif name == "proposal_output_floor":
        def fn():  # allocating and writing x_ext (x is a view): what any builder must do
            return torch.ones(seg.size(0), 3 * DIM)
    elif name == "proposal_edges":
        def fn():
            return proposal_edges(seg)
    elif name == "proposal_edges_dense":
        def fn():
            return dense_edges(seg)
    elif name == "proposal_features":
        from tagraph.data.proposal_graph import snippet_ranges
        from tagraph.ops import range_max_pool

        def fn():
            length = seg[:, 1] - seg[:, 0]
            parts = torch.cat([
                torch.stack([(seg[:, 0] - length / 2).clamp_min(0), seg[:, 0]], 1), seg,
                torch.stack([seg[:, 1], seg[:, 1] + length / 2], 1)])
            a, b = snippet_ranges(times, parts)
            return range_max_pool(feats, a, b)
    elif name == "proposal_features_loop":
        def fn():
            return loop_features(feats, times, seg)
    else:
        raise ValueError(name)
    base = _reset_peak()
    t0 = time.perf_counter()
    out = fn()  # warm-up, and the memory high-water mark
    ts = [time.perf_counter() - t0]  # kept only for single-run (repeats=0) references
    peak = _peak_mb() - base
    del out
    if repeats > 0:
        ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    if name == "proposal_graph":
        data = fn()
        extra["edges"] = int(data.edge_index.size(1))
    return {"case": name, "ms": 1e3 * statistics.median(ts), "min_ms": 1e3 * min(ts),
            "peak_mb": peak, **extra}


def _recall(kind: str, repeats: int):
    """recall@10 and relative neighbour similarity of approx vs exact kNN."""
    from tagraph.data import knn_edges

    x = _snippet_features(DIM, kind)
    t = x.size(0)
    t0 = time.perf_counter()
    exact = knn_edges(x, KNN, (-1, 1))
    exact_ms = 1e3 * (time.perf_counter() - t0)
    ts = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        approx = knn_edges(x, KNN, (-1, 1), method="approx")
        ts.append(time.perf_counter() - t0)
    a = approx[0][0].view(t, KNN)
    e = exact[0][0].view(t, KNN)
    recall = float((a[:, :, None] == e[:, None, :]).any(2).float().mean())
    return {"case": f"recall_{kind}", "ms": 1e3 * statistics.median(ts), "exact_ms": exact_ms,
            "recall": recall, "exact_cos": float(exact[1].mean()),
            "approx_cos": float(approx[1].mean())}


# (fast, reference, env): the reference's time gives the speed-up column
# glibc keeps large blocks in its heap instead of mapping and unmapping them,
# so the output memory of one call is reused, already faulted in, by the next
HEAP_ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
_KNOBS = ("THP_MEM_ALLOC_ENABLE", *HEAP_ENV)
CASES = [
    ("proposal_graph", "proposal_graph_bruteforce", None),
    ("proposal_output_floor", None, None),
    ("proposal_graph", None, {"THP_MEM_ALLOC_ENABLE": "1"}),
    ("proposal_output_floor", None, {"THP_MEM_ALLOC_ENABLE": "1"}),
    ("proposal_graph", None, HEAP_ENV),
    ("proposal_output_floor", None, HEAP_ENV),
    ("proposal_edges", "proposal_edges_dense", None),
    ("proposal_features", "proposal_features_loop", None),
    ("snippet_d2048_exact", "snippet_d2048_dense", None),
    ("snippet_d2048_approx", "snippet_d2048_dense", None),
    ("gemm_d2048", None, None),
    ("snippet_d256_exact", "snippet_d256_dense", None),
    ("snippet_d256_approx", "snippet_d256_dense", None),
    ("gemm_d256", None, None),
]
RECALL = ["synthetic", "smooth", "gaussian", "grouped"]


def _run_case(case: str, repeats: int, threads: int, pythonpath: str,
              env: dict | None = None) -> dict:
    """One case in a fresh subprocess with ``pythonpath`` first on the path and
    none of the allocation knobs unless ``env`` sets them; its JSON result."""
    full = {k: v for k, v in os.environ.items() if k not in _KNOBS}
    full["PYTHONPATH"] = os.pathsep.join([pythonpath, os.environ.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--case", case, "--repeats", str(repeats),
         "--threads", str(threads)],
        env={**full, **(env or {})}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ab(args) -> None:
    """Each case with the other checkout's package and this one's, in
    alternating subprocesses (so both see the same machine load); the median
    over rounds of each side's median."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sides = {"other": os.path.abspath(args.against), "this": here}
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} alternating "
          f"rounds of median-of-{args.repeats}; other = {sides['other']}, this = {here}; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'case':<26}{'other ms':>10}{'this ms':>10}{'other MB':>10}{'this MB':>10}"
          f"{'speed-up':>10}")
    for case in args.cases.split(","):
        res: dict = {"other": [], "this": []}
        for _ in range(args.rounds):
            for side, root in sides.items():
                res[side].append(_run_case(case, args.repeats, args.threads, root))
        ms = {k: statistics.median(r["ms"] for r in v) for k, v in res.items()}
        mb = {k: statistics.median(r["peak_mb"] for r in v) for k, v in res.items()}
        print(f"{case:<26}{ms['other']:>10.1f}{ms['this']:>10.1f}{mb['other']:>10.0f}"
              f"{mb['this']:>10.0f}{ms['other'] / ms['this']:>9.2f}x", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="skip the slow brute-force references and the recall rows")
    parser.add_argument("--against", default=None, metavar="CHECKOUT",
                        help="A/B mode: time --cases with another checkout's tagraph and "
                             "this one's, alternating, --rounds times")
    parser.add_argument("--cases", default="proposal_graph,snippet_d2048_exact,"
                        "snippet_d256_exact", help="comma-separated (with --against)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(_case(args.case, args.repeats)))
        return
    if args.against:
        _ab(args)
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache: dict = {}

    def run(case, env=None, repeats=None):
        key = (case, tuple(sorted((env or {}).items())))
        if key not in cache:
            cache[key] = _run_case(case, args.repeats if repeats is None else repeats,
                                   args.threads, here, env)
        return cache[key]

    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        thp = "n/a"
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}, "
          f"THP {thp}, load average {os.getloadavg()[0]:.2f} at start; "
          f"shared CPU: compare ratios, not absolute times")
    print(f"{'case':<30}{'fast ms':>10}{'peak MB':>10}{'reference':>28}{'ref ms':>10}"
          f"{'ref MB':>10}{'speed-up':>10}")
    for fast, ref, env in CASES:
        if args.quick and ref is not None and ("bruteforce" in ref or "dense" in ref
                                               or "loop" in ref):
            ref = None
        f = run(fast, env)
        label = fast + ("" if not env else " [THP]" if "THP_MEM_ALLOC_ENABLE" in env
                        else " [heap]")
        line = f"{label:<30}{f['ms']:>10.1f}{f['peak_mb']:>10.0f}"
        if ref is not None:
            slow = "bruteforce" in ref or "dense" in ref or "loop" in ref
            r = run(ref, env, repeats=0 if slow else None)  # slow references: one run
            line += f"{ref:>28}{r['ms']:>10.1f}{r['peak_mb']:>10.0f}{r['ms'] / f['ms']:>9.1f}x"
        if "edges" in f:
            line += f"   (N={f['proposals']}, E={f['edges']})"
        if "gmac" in f:
            line += f"   ({f['gmac']:.0f} GMAC: {1e3 * f['gmac'] / f['ms']:.1f} GMAC/s; " \
                    f"exact kNN >= {f['ms'] / 2:.0f} ms)"
        print(line, flush=True)
    if args.quick:
        return
    print(f"\nknn_method='approx' vs 'exact' (T = {T_SNIPPETS}, D = {DIM}, knn = {KNN}, "
          f"temporal neighbours excluded; knn_edges only)")
    print(f"{'features':<14}{'exact ms':>10}{'approx ms':>11}{'speed-up':>10}{'recall@10':>11}"
          f"{'exact cos':>11}{'approx cos':>12}")
    for kind in RECALL:
        r = run(f"recall_{kind}", repeats=min(args.repeats, 3))
        print(f"{kind:<14}{r['exact_ms']:>10.0f}{r['ms']:>11.0f}{r['exact_ms'] / r['ms']:>9.1f}x"
              f"{r['recall']:>11.3f}{r['exact_cos']:>11.3f}{r['approx_cos']:>12.3f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
