"""P-GCN speed: sampler throughput, the paper's Table 7 (training time per
iteration vs. N_s), and inference videos / second.

    PYTHONPATH=. python benchmarks/bench_pgcn.py                 # all parts
    PYTHONPATH=. python benchmarks/bench_pgcn.py --parts sampler
    PYTHONPATH=. python benchmarks/bench_pgcn.py --size full --feature-dim 256 \
        --root runs/synthetic_d256                               # Table 7 on full-size data

Timings on a shared CPU are noisy: compare the ratios printed side by side.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch_geometric.data import Data
from torch_geometric.sampler import NodeSamplerInput

from tagraph.loader import (
    PGCNTrainLoader,
    UniformNeighborSampler,
    has_native_sampler,
    make_neighbor_sampler,
    proposal_neighbor_loader,
)


def timeit(fn, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def bench_sampler(args) -> None:
    torch.manual_seed(0)
    n, e = args.nodes, args.edges
    edge_index = torch.randint(0, n, (2, e))
    data = Data(x=torch.randn(n, 64), edge_index=edge_index, edge_weight=torch.rand(e),
                num_nodes=n)
    print(f"\n## Neighbour sampling: {n} nodes, {e} edges, num_neighbors=[4, 4], "
          f"batch 1024 (ms / batch)")
    kinds = ["tagraph"] + (["native"] if has_native_sampler() else [])
    if not has_native_sampler():
        print("(pyg-lib / torch-sparse not installed: PyG's native sampler cannot run here, "
              "only tagraph's is timed)")
    seeds = torch.randperm(n)
    rows = []
    for kind in kinds:
        t0 = time.perf_counter()
        sampler = make_neighbor_sampler(data, [4, 4], sampler=kind)
        build = time.perf_counter() - t0
        it = iter(range(10**9))

        def sample(sampler=sampler, it=it):
            i = next(it) % (n // 1024)
            sampler.sample_from_nodes(NodeSamplerInput(
                input_id=None, node=seeds[i * 1024:(i + 1) * 1024]))

        t_sample = timeit(sample, args.repeat)
        loader = proposal_neighbor_loader(data, [4, 4], batch_size=1024, shuffle=True,
                                          sampler=sampler)
        li = iter(loader)
        t_loader = timeit(lambda li=li: next(li), args.repeat)
        rows.append((kind, build, t_sample, t_loader))
    print("| sampler | build (s) | sample_from_nodes | NeighborLoader batch (incl. x, "
          "edge_weight) |")
    print("|---|---|---|---|")
    for kind, build, ts, tl in rows:
        print(f"| {kind} | {build:.2f} | {1000 * ts:.1f} | {1000 * tl:.1f} |")
    if len(rows) == 2:
        print(f"native / tagraph sample time: {rows[1][2] / rows[0][2]:.2f}x")
    assert isinstance(make_neighbor_sampler(data, [4, 4], sampler="tagraph"),
                      UniformNeighborSampler)


def load_graphs(args):
    from tagraph.data import SyntheticTAL

    size = {"feature_dim": args.feature_dim} if args.size == "full" else args.size
    train = SyntheticTAL(args.root, size=size, subset="train", graph="proposal")
    graphs = [train[i] for i in range(len(train))]
    if "inference" not in args.parts:
        return graphs, [], train.files.classes
    test = SyntheticTAL(args.root, size=size, subset="test", graph="proposal")
    return graphs, [test[i] for i in range(len(test))], train.files.classes


def bench_table7(args, graphs, classes) -> None:
    from tagraph.models import PGCN

    d = graphs[0].x.size(1)
    deg = torch.cat([torch.bincount(g.edge_index[1], minlength=g.num_nodes) for g in graphs])
    print(f"\n## Table 7: training time per iteration ({len(graphs)} videos, "
          f"{sum(g.num_nodes for g in graphs)} proposals, D={d}, max in-degree "
          f"{int(deg.max())}, batch {args.batch_size} seeds, hidden {args.hidden})")
    torch.manual_seed(0)
    model = PGCN(d, len(classes), args.hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(batch):
        loss, _ = model.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    results = []
    for ns in args.ns:
        loader = PGCNTrainLoader(graphs, [ns, ns], batch_size=args.batch_size,
                                 sampler="tagraph", epoch_multiplier=50)
        it = iter(loader)
        sizes = []

        def one(it=it, sizes=sizes):
            b = next(it)
            sizes.append(b.num_nodes)
            step(b)

        t = timeit(one, args.repeat)
        results.append((f"N_s = {ns}", t, sum(sizes) / len(sizes)))
    # Full graph: every proposal of the seeds' videos, all edges, loss at the seeds.
    loader = PGCNTrainLoader(graphs, [-1], batch_size=args.batch_size, sampler="tagraph",
                             epoch_multiplier=50)
    full = loader.data
    it = iter(loader)
    sizes = []

    def one_full():
        b = next(it)
        seeds = b.n_id[: b.batch_size]
        vids = torch.zeros(int(full.video.max()) + 1, dtype=torch.bool)
        vids[full.video.index_select(0, seeds)] = True
        keep = vids.index_select(0, full.video)
        # seeds first, then the other nodes of their videos
        mask = keep.clone()
        mask[seeds] = False
        nodes = torch.cat([seeds, mask.nonzero().view(-1)])
        pos = torch.full((full.num_nodes,), -1, dtype=torch.long)
        pos[nodes] = torch.arange(nodes.numel())
        emask = (keep[full.edge_index[0]] & keep[full.edge_index[1]]).nonzero().view(-1)
        ei = pos[full.edge_index[:, emask]]
        ew = full.edge_weight[emask]
        batch = Data(x=full.x[nodes], x_ext=full.x_ext[nodes], edge_index=ei, edge_weight=ew,
                     y=full.y[nodes], matched_label=full.matched_label[nodes],
                     reg_target=full.reg_target[nodes], sample_type=full.sample_type[nodes],
                     batch_size=b.batch_size, num_nodes=nodes.numel())
        sizes.append(nodes.numel())
        step(batch)

    t = timeit(one_full, args.repeat)
    results.append(("full graph", t, sum(sizes) / len(sizes)))
    ref = results[[r[0] for r in results].index("N_s = 4")][1] if 4 in args.ns else results[0][1]
    print("| sampling | nodes / batch | ms / iteration | relative to N_s = 4 |")
    print("|---|---|---|---|")
    for name, t, nodes in results:
        print(f"| {name} | {nodes:.0f} | {1000 * t:.0f} | {t / ref:.2f} |")


def bench_inference(args, graphs, classes) -> None:
    from tagraph.engine.pgcn import pgcn_predict
    from tagraph.models import PGCN

    d = graphs[0].x.size(1)
    torch.manual_seed(0)
    model = PGCN(d, len(classes), args.hidden).eval()
    pgcn_predict(model, graphs[:4], classes)  # warm-up
    t = time.perf_counter()
    dets = pgcn_predict(model, graphs, classes, batch_size=16)
    dt = time.perf_counter() - t
    print(f"\n## Inference (full graphs, deterministic): {len(graphs)} test videos, "
          f"{sum(g.num_nodes for g in graphs)} proposals in {dt:.2f}s -> "
          f"{len(graphs) / dt:.1f} videos/s ({len(dets)} detections)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", default=["sampler", "table7", "inference"])
    p.add_argument("--nodes", type=int, default=200_000)
    p.add_argument("--edges", type=int, default=4_000_000)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--root", default="runs/synthetic_small")
    p.add_argument("--size", default="small")
    p.add_argument("--feature-dim", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 10])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, native sampler "
          f"available: {has_native_sampler()}")
    if "sampler" in args.parts:
        bench_sampler(args)
    if "table7" in args.parts or "inference" in args.parts:
        train, test, classes = load_graphs(args)
        if "table7" in args.parts:
            bench_table7(args, train, classes)
        if "inference" in args.parts:
            bench_inference(args, test, classes)


if __name__ == "__main__":
    main()
