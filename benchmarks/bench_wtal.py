"""Benchmark of the weak-supervision machinery.

1. ``GraphLaplacianRegularization`` forward + backward (gradients for the scores
   and the edge weights) on one long video: T = 10,000 snippets, C = 20 classes,
   temporal (+-1) and kNN = 10 semantic edges, conjugate-gradient solver; and
   the dense (Cholesky) solver against CG at T = 1,000 / 2,000 / 4,000.
2. Optionally (``--epoch``) one training epoch of each weakly supervised model
   on a synthetic set (videos / s) and inference videos / s.

    PYTHONPATH=. python benchmarks/bench_wtal.py [--epoch --size medium]

Timings are medians of several repetitions; on a shared machine compare the
ratios measured side by side in one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from tagraph.data import snippet_graph
from tagraph.nn import GraphLaplacianRegularization


def _median_ms(fn: Callable[[], None], reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _problem(t: int, c: int, knn: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    # Features with temporal structure (a random walk), as snippet features have.
    x = torch.cumsum(torch.randn(t, 32, generator=g), 0) * 0.1 + torch.randn(t, 32, generator=g)
    pos = (torch.arange(t) + 0.5) * 0.53
    data = snippet_graph(x, pos, temporal_offsets=(-1, 1), knn=knn)
    s = torch.rand(t, c, generator=g)
    w = torch.rand(data.edge_index.size(1), generator=g)
    return data.edge_index, s, w


def _fwd_bwd(glr: GraphLaplacianRegularization, ei: torch.Tensor, s0: torch.Tensor,
             w0: torch.Tensor) -> Callable[[], None]:
    g = torch.randn_like(s0)

    def fn() -> None:
        s = s0.clone().requires_grad_()
        w = w0.clone().requires_grad_()
        out = glr(s, ei, w)
        out.backward(g)

    return fn


def bench_regulariser(args: argparse.Namespace) -> None:
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, mu = {args.mu}")
    ei, s, w = _problem(10_000, 20, 10)
    cg = GraphLaplacianRegularization(mu=args.mu, solver="cg")
    with torch.no_grad():
        fwd_ms = _median_ms(lambda: cg(s, ei, w), args.reps)
    ms = _median_ms(_fwd_bwd(cg, ei, s, w), args.reps)
    print("\n| T | C | edges | solver | forward (ms) | forward + backward (ms) |")
    print("|---|---|---|---|---|---|")
    print(f"| 10,000 | 20 | {ei.size(1):,} | CG | {fwd_ms:.1f} | {ms:.1f} |")
    print("\n| T | edges | dense fwd+bwd (ms) | CG fwd+bwd (ms) | dense / CG |")
    print("|---|---|---|---|---|")
    dense = GraphLaplacianRegularization(mu=args.mu, solver="dense")
    for t in (1000, 2000, 4000):
        ei, s, w = _problem(t, 20, 10)
        reps = max(1, args.reps // (t // 1000))
        d_ms = _median_ms(_fwd_bwd(dense, ei, s, w), reps)
        c_ms = _median_ms(_fwd_bwd(cg, ei, s, w), args.reps)
        print(f"| {t:,} | {ei.size(1):,} | {d_ms:.1f} | {c_ms:.1f} | {d_ms / c_ms:.1f}x |")


def bench_epoch(args: argparse.Namespace) -> None:
    from torch_geometric.loader import DataLoader

    from tagraph.data import SyntheticTAL
    from tagraph.models import ECM, GRN

    common = dict(size=args.size, seed=0, max_snippets=750)
    plain = SyntheticTAL(args.root, subset="train", graph=None, **common)
    graph = SyntheticTAL(args.root, subset="train", graph="snippet",
                         graph_kwargs={"temporal_offsets": (-2, -1, 1, 2), "knn": 5}, **common)
    d, c = plain[0].x.size(1), len(plain.classes)
    models = {
        "GRN": (GRN(d, c), graph),
        "GRN w/o reg.": (GRN(d, c, regularize=False), plain),
        "ECM (hidden 2048)": (ECM(d, c), plain),
        "ECM pre only": (ECM(d, c, post_stream=False), plain),
    }
    print(f"\n{args.size} synthetic set: {len(plain)} training videos, D = {d}, T <= 750")
    print("| model | train videos/s | inference videos/s |")
    print("|---|---|---|")
    for name, (model, ds) in models.items():
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        loader = DataLoader(ds, batch_size=16, shuffle=True)
        model.train()
        t0 = time.perf_counter()
        for batch in loader:
            loss, _ = model.training_step(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_vps = len(ds) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for batch in DataLoader(ds, batch_size=16):
            model.predict(batch)
        infer_vps = len(ds) / (time.perf_counter() - t0)
        print(f"| {name} | {train_vps:.1f} | {infer_vps:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mu", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--epoch", action="store_true", help="also time one training epoch")
    p.add_argument("--size", default="medium")
    p.add_argument("--root", default="data/synthetic")
    args = p.parse_args()
    bench_regulariser(args)
    if args.epoch:
        bench_epoch(args)


if __name__ == "__main__":
    main()
