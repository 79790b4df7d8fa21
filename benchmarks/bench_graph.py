"""Graph-builder benchmark: fast builders vs dense O(N^2) / O(T^2) references.

    PYTHONPATH=. python benchmarks/bench_graph.py [--repeats 5] [--threads 1]

Each case runs in its own subprocess: the time is the median of ``--repeats``
runs after one warm-up, and the peak memory is the process's peak resident set
(``VmHWM``, reset after the inputs are built) minus its resident set before the
first run, so it counts every allocation torch makes (``tracemalloc`` does not
see them). Cases:

* ``proposal_graph``: 5,000 proposals on a 2,000-snippet, 2048-d video (edges,
  relu-cos weights, max-pooled ``x`` and ``x_ext``); proposals are a TAG/BSN-
  like mix: log-uniform lengths 0.3-60 s, uniform centres, clipped. Its
  "reference" is only the floor of allocating and writing the 164 MB of
  ``x`` + ``x_ext`` (memory-bound on this machine).
* ``proposal_edges``: the edges alone, against a dense reference that builds
  the N x N tIoU and distance matrices (as the official P-GCN code does).
* ``proposal_features``: pooled ``x`` / ``x_ext`` against a per-proposal loop.
* ``snippet_graph``: T = 10,000, knn = 10 (D = 2048 and D = 256) against the
  full T x T similarity matrix.
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


def _case(name: str, repeats: int):
    from tagraph.data import proposal_edges, proposal_graph, snippet_graph

    feats, times, seg, duration = _video()
    if name.startswith("snippet"):
        dim = int(name.split("_")[1][1:])  # snippet_d256[_dense]
        g = torch.Generator().manual_seed(1)
        # temporally smooth features: neighbours similar, as real I3D features
        x = torch.randn(T_SNIPPETS, dim, generator=g).cumsum(0) / 30 \
            + torch.randn(T_SNIPPETS, dim, generator=g)
        t = (torch.arange(T_SNIPPETS, dtype=torch.float32) * 4 + 8) / 25
        if name.endswith("_dense"):
            def fn():
                return dense_knn(x, KNN)
        else:
            def fn():
                return snippet_graph(x, t, knn=KNN)
    elif name == "proposal_graph":
        def fn():
            return proposal_graph(feats, times, seg, duration=duration)
    elif name == "proposal_output_floor":
        def fn():  # allocating and writing x and x_ext: what any builder must do
            n = seg.size(0)
            return torch.ones(n, 3 * DIM), torch.ones(n, DIM)
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
    out = fn()  # warm-up, and the memory high-water mark
    peak = _peak_mb() - base
    del out
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    extra = {"proposals": int(seg.size(0))}
    if name == "proposal_graph":
        data = fn()
        extra["edges"] = int(data.edge_index.size(1))
    return {"case": name, "ms": 1e3 * statistics.median(ts), "min_ms": 1e3 * min(ts),
            "peak_mb": peak, **extra}


CASES = [
    ("proposal_graph", "proposal_output_floor"),
    ("proposal_edges", "proposal_edges_dense"),
    ("proposal_features", "proposal_features_loop"),
    ("snippet_d2048", "snippet_d2048_dense"),
    ("snippet_d256", "snippet_d256_dense"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(_case(args.case, args.repeats)))
        return
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get("PYTHONPATH", "")])

    def run(case):
        out = subprocess.run([sys.executable, __file__, "--case", case, "--repeats",
                              str(args.repeats), "--threads", str(args.threads)],
                             env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}; "
          f"shared CPU: compare ratios, not absolute times")
    print(f"{'case':<22}{'fast ms':>10}{'peak MB':>10}{'reference':>26}{'ref ms':>10}"
          f"{'ref MB':>10}{'speed-up':>10}")
    for fast, ref in CASES:
        f = run(fast)
        line = f"{fast:<22}{f['ms']:>10.1f}{f['peak_mb']:>10.0f}"
        if ref is not None:
            r = run(ref)
            line += f"{ref:>26}{r['ms']:>10.1f}{r['peak_mb']:>10.0f}{r['ms'] / f['ms']:>9.1f}x"
        if "edges" in f:
            line += f"   (N={f['proposals']}, E={f['edges']})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
