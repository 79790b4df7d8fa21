"""P-GCN vs its MLP and mean-pooling baselines on the synthetic THUMOS-like dataset.

Trains P-GCN (GCN_1 + GCN_2), MLP_1 + MLP_2 and MP_1 + MP_2 with the paper's
recipe (SGD lr 0.01, momentum 0.9, weight decay 5e-4, x0.1 every 15 epochs,
NeighborLoader sampling N_s = 4 over two hops, 1 : 6 : 1 samples per video),
picks each run's checkpoint on a validation split carved from the training
videos (never the test set), evaluates mAP@tIoU 0.1-0.7 on the test subset
with deterministic full-graph inference, and prints mean +- std over seeds.

    PYTHONPATH=. python examples/pgcn_synthetic.py --feature-dim 256 --seeds 0 1 2

Outputs (under --out): per run ``<method>_seed<k>/`` with ``best.pt``,
``last.pt``, ``metrics.jsonl``, ``results_test.json`` (ActivityNet format) and
``eval_test.json``; ``summary.json`` and ``summary.md`` for the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from pathlib import Path

import torch

from tagraph.data import SyntheticTAL, drop_gt_nodes
from tagraph.engine import Trainer, load_checkpoint
from tagraph.engine.pgcn import pgcn_evaluate
from tagraph.engine.runner import split_train_val
from tagraph.io import atomic_write, save_results
from tagraph.loader import PGCNTrainLoader, proposal_sample_types
from tagraph.models import PGCN, regression_stats

METHODS = {
    "P-GCN (GCN+GCN)": dict(act_branch="gcn", comp_branch="gcn"),
    "MLP+MLP": dict(act_branch="mlp", comp_branch="mlp"),
    "MP+MP": dict(act_branch="mean_pool", comp_branch="mean_pool"),
    "GCN+MLP": dict(act_branch="gcn", comp_branch="mlp"),
    # diagnosis (not in the paper): PGCNConv with its own map for the node itself
    "GCNr+GCNr": dict(act_branch="gcn_root", comp_branch="gcn_root"),
    "GCN+GCNr": dict(act_branch="gcn", comp_branch="gcn_root"),
}
TIOU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def run_name(name: str, seed: int) -> str:
    return f"{name.split()[0].lower().replace('+', '_')}_seed{seed}"


def run(args, name, kwargs, seed, train, val, gt_file, classes, out: Path):
    run_dir = out / run_name(name, seed)
    torch.manual_seed(seed)
    d = train[0].x.size(1)
    model = PGCN(d, len(classes), args.hidden, edge_weight=args.edge_weight,
                 dropout=args.dropout, gcn_dropout=args.gcn_dropout, **kwargs)
    fg_t = torch.cat([g.reg_target for g in train])
    fg_iou = torch.cat([g.iou for g in train])
    model.set_regression_stats(*regression_stats(fg_t, fg_iou))
    loader = PGCNTrainLoader(train, args.num_neighbors, batch_size=args.batch_size,
                             epoch_multiplier=args.epoch_multiplier, sampler=args.sampler)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=args.lr_step, gamma=0.1)
    cfg = dict(model.config, seed=seed, lr=args.lr, lr_step=args.lr_step, epochs=args.epochs,
               num_neighbors=list(args.num_neighbors), batch_size=args.batch_size,
               epoch_multiplier=args.epoch_multiplier)
    trainer = Trainer(model, opt, scheduler=sched, out_dir=run_dir, seed=seed,
                      progress=not args.no_progress, config=cfg)

    def val_fn(m):
        res, _ = pgcn_evaluate(m, val, gt_file, classes, TIOU, nms_threshold=args.nms)
        return {"val_mAP": float(res.average_mAP)}

    t0 = time.perf_counter()
    hist = trainer.fit(loader, args.epochs, val_fn=val_fn, select="val_mAP", mode="max",
                       resume=args.resume)
    train_s = time.perf_counter() - t0
    load_checkpoint(run_dir / "best.pt", model, config=cfg)
    print(f"{name} seed {seed}: trained in {train_s:.0f}s, best epoch "
          f"{hist[-1]['best_epoch']}, val avg mAP {max(h['val_mAP'] for h in hist):.4f}",
          flush=True)
    return {"method": name, "seed": seed, "best_epoch": hist[-1]["best_epoch"],
            "val_mAP": max(h["val_mAP"] for h in hist), "train_seconds": train_s,
            "run_dir": str(run_dir)}, model


def evaluate(args, info, model, test, gt_file, classes):
    run_dir = Path(info["run_dir"])
    res, dets = pgcn_evaluate(model, test, gt_file, classes, TIOU, nms_threshold=args.nms)
    save_results(run_dir / "results_test.json", dets)
    summary = dict(info, mAP={f"{t:.1f}": float(v) for t, v in zip(TIOU, res.mAP)},
                   average_mAP=float(res.average_mAP))
    atomic_write(run_dir / "eval_test.json", json.dumps(summary, indent=1))
    print(f"{info['method']} seed {info['seed']}: test mAP@0.5 {summary['mAP']['0.5']:.4f}, "
          f"avg {summary['average_mAP']:.4f}", flush=True)
    return summary


def table(rows):
    head = "| method | " + " | ".join(f"{t:.1f}" for t in TIOU) + " | avg |"
    lines = [head, "|---" * (len(TIOU) + 2) + "|"]
    for name in METHODS:
        rs = [r for r in rows if r["method"] == name]
        if not rs:
            continue
        cells = []
        for key in [f"{t:.1f}" for t in TIOU] + ["avg"]:
            vals = [100 * (r["average_mAP"] if key == "avg" else r["mAP"][key]) for r in rs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.1f} ± {sd:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


class CrossHeads(torch.nn.Module):
    """Scores with the activity head of one model and the completeness and
    regression heads of another (diagnosis: which branch does the graph help?)."""

    def __init__(self, act_model, comp_model):
        super().__init__()
        self.a, self.c = act_model, comp_model

    @torch.no_grad()
    def scores(self, data):
        act, _, _ = self.a._forward_data(data)
        _, comp, reg = self.c._forward_data(data)
        score = torch.softmax(act, dim=-1)[:, 1:] * torch.exp(comp)
        return score, reg * self.c.reg_std + self.c.reg_mean


def load_run(run_dir: Path):
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    cfg = ckpt["config"]
    keys = ("ext_channels", "act_branch", "comp_branch", "edge_weight", "dropout",
            "gcn_dropout", "comp_weight", "reg_weight", "ohem_ratio")
    model = PGCN(cfg["in_channels"], cfg["num_classes"], cfg["hidden_channels"],
                 **{k: cfg[k] for k in keys})
    load_checkpoint(run_dir / "best.pt", model, config=cfg)
    return model.eval()


def validation_graphs(args, size):
    """The validation videos' proposal graphs (without ground-truth nodes), the
    annotation file and the class names."""
    train_ds = SyntheticTAL(args.root, size=size, subset="train", graph="proposal",
                            graph_kwargs={"add_gt": not args.no_gt_as_fg})
    _, val_idx = split_train_val(len(train_ds), args.val_fraction, args.split_seed)
    val = [drop_gt_nodes(train_ds[i]) for i in val_idx]
    return val, train_ds.files.annotation_file, train_ds.files.classes


def cross_heads(args, size, out: Path) -> None:
    """Validation avg mAP of P-GCN / MLP activity heads x completeness heads."""
    val, gt_file, classes = validation_graphs(args, size)
    print("| seed | act: GCN, comp: GCN | act: GCN, comp: MLP | act: MLP, comp: GCN "
          "| act: MLP, comp: MLP |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        g, m = out / f"p-gcn_seed{seed}", out / f"mlp_mlp_seed{seed}"
        if not ((g / "best.pt").exists() and (m / "best.pt").exists()):
            continue
        models = {"GCN": load_run(g), "MLP": load_run(m)}
        cells = []
        for a, c in (("GCN", "GCN"), ("GCN", "MLP"), ("MLP", "GCN"), ("MLP", "MLP")):
            res, _ = pgcn_evaluate(CrossHeads(models[a], models[c]), val, gt_file, classes,
                                   TIOU, nms_threshold=args.nms)
            cells.append(f"{100 * res.average_mAP:.1f}")
        print(f"| {seed} | " + " | ".join(cells) + " |", flush=True)


def keep_in_edges(g, k: int, generator: torch.Generator):
    """The graph with at most ``k`` random in-edges per node (the training-time
    N_s = k neighbourhood, drawn once)."""
    ei = g.edge_index
    order = torch.sort(torch.rand(ei.size(1), generator=generator)).indices
    order = order.index_select(0, torch.sort(ei[1].index_select(0, order), stable=True).indices)
    dst = ei[1].index_select(0, order)
    counts = torch.bincount(dst, minlength=g.num_nodes)
    rank = torch.arange(dst.numel()) - (torch.cumsum(counts, 0) - counts).index_select(0, dst)
    keep = order.index_select(0, (rank < k).nonzero().view(-1))
    h = g.clone()
    h.edge_index = ei.index_select(1, keep)
    h.edge_weight = g.edge_weight.index_select(0, keep)
    h.edge_type = g.edge_type.index_select(0, keep)
    return h


def neighbour_check(args, size, out: Path) -> None:
    """Validation avg mAP of the trained graph runs (``--methods``) on the full
    graph, on graphs keeping <= N_s random in-edges per node (the training-time
    neighbourhood), and without edges: does the sampled-vs-full mismatch
    matter, and how much do the edges give?"""
    val, gt_file, classes = validation_graphs(args, size)
    k = args.num_neighbors[0]
    print(f"| method | seed | full graph | <= {k} in-edges (draw 0) | <= {k} in-edges (draw 1) "
          "| no edges |")
    print("|---|---|---|---|---|---|")
    for name, seed in ((n, s) for n in args.methods for s in args.seeds):
        run = out / run_name(name, seed)
        if not (run / "best.pt").exists():
            continue
        model = load_run(run)
        variants = [val] + [[keep_in_edges(g, k, torch.Generator().manual_seed(r)) for g in val]
                            for r in range(2)]
        variants.append([keep_in_edges(g, 0, torch.Generator()) for g in val])
        cells = []
        for graphs in variants:
            res, _ = pgcn_evaluate(model, graphs, gt_file, classes, TIOU, nms_threshold=args.nms)
            cells.append(f"{100 * res.average_mAP:.1f}")
        print(f"| {name} | {seed} | " + " | ".join(cells) + " |", flush=True)


def neighbour_labels(args, size) -> None:
    """How the sample category (foreground / incomplete / background / unused)
    of a training proposal's in-neighbours relates to its own, per edge type
    (row: the receiving node, columns: its neighbours, row-normalised)."""
    train_ds = SyntheticTAL(args.root, size=size, subset="train", graph="proposal",
                            graph_kwargs={"add_gt": not args.no_gt_as_fg})
    names = ["foreground", "incomplete", "background", "unused"]
    counts = torch.zeros(2, 4, 4)
    for i in range(len(train_ds)):
        g = drop_gt_nodes(train_ds[i])
        cat = proposal_sample_types(g) % 4  # -1 (unused) -> 3
        src, dst = g.edge_index
        counts.index_put_((g.edge_type, cat[dst], cat[src]), torch.ones(src.numel()),
                          accumulate=True)
    for t, kind in enumerate(("contextual", "surrounding")):
        print(f"\n{kind} edges\n\n| node \\ neighbour | " + " | ".join(names) + " | edges |")
        print("|---" * 6 + "|")
        for r, name in enumerate(names):
            row = counts[t, r] / counts[t, r].sum().clamp(min=1)
            print(f"| {name} | " + " | ".join(f"{float(v):.2f}" for v in row)
                  + f" | {int(counts[t, r].sum())} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/synthetic_d256")
    p.add_argument("--out", default="runs/pgcn_table")
    p.add_argument("--size", default="full", help="SyntheticTAL size (small/medium/full)")
    p.add_argument("--feature-dim", type=int, default=256,
                   help="override of the synthetic feature size D (full size: 2048)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS)[:3],
                   help=f"of {list(METHODS)} (GCN+MLP: the paper's GCN_1 + MLP_2 of Table 3)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--epoch-multiplier", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-neighbors", type=int, nargs="+", default=[4, 4])
    p.add_argument("--sampler", default="auto", choices=["auto", "native", "tagraph"],
                   help="neighbour sampler (auto: PyG's native one when installed)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--lr-step", type=int, default=15, help="x0.1 every this many epochs")
    p.add_argument("--dropout", type=float, default=0.8)
    p.add_argument("--gcn-dropout", type=float, default=0.5)
    p.add_argument("--edge-weight", default="cos", choices=["cos", "embed_cos", "none"])
    p.add_argument("--nms", type=float, default=0.3)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--split-seed", type=int, default=1234)
    p.add_argument("--no-gt-as-fg", action="store_true",
                   help="do not add the ground-truth boxes as foreground training nodes")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is much faster on a shared, oversubscribed CPU)")
    p.add_argument("--cross-heads", action="store_true",
                   help="validation mAP of every activity-head x completeness-head pairing "
                        "of the trained P-GCN and MLP runs under --out (a diagnosis)")
    p.add_argument("--neighbour-check", action="store_true",
                   help="validation mAP of the trained P-GCN runs on full graphs vs graphs "
                        "with <= N_s in-edges per node vs no edges (a diagnosis)")
    p.add_argument("--neighbour-labels", action="store_true",
                   help="sample categories of the training proposals' neighbours vs their own "
                        "(a diagnosis)")
    p.add_argument("--summarize", action="store_true",
                   help="only print the table of the eval_test.json files under --out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    size = {"feature_dim": args.feature_dim} if args.size == "full" else args.size
    out = Path(args.out)
    if args.cross_heads:
        cross_heads(args, size, out)
        return
    if args.neighbour_check:
        neighbour_check(args, size, out)
        return
    if args.neighbour_labels:
        neighbour_labels(args, size)
        return
    if args.summarize:
        # Evaluate finished runs that have no test numbers yet (e.g. while other
        # runs still train), then print the table of all eval_test.json files.
        pending = []
        for last in sorted(out.glob("*/last.pt")):
            ckpt = torch.load(last, weights_only=True)
            cfg = ckpt["config"]
            if ckpt["epoch"] < cfg["epochs"] or (last.parent / "eval_test.json").exists():
                continue
            model = load_run(last.parent)
            name = next(m for m, kw in METHODS.items()
                        if (kw["act_branch"], kw["comp_branch"])
                        == (cfg["act_branch"], cfg["comp_branch"]))
            hist = ckpt["history"]
            pending.append(({"method": name, "seed": cfg["seed"],
                             "best_epoch": hist[-1]["best_epoch"],
                             "val_mAP": max(h["val_mAP"] for h in hist),
                             "train_seconds": sum(h["time"] for h in hist),
                             "run_dir": str(last.parent)}, model))
        if pending:
            test_ds = SyntheticTAL(args.root, size=size, subset="test", graph="proposal")
            test = [test_ds[i] for i in range(len(test_ds))]
            gt_file = test_ds.files.annotation_file
            for info, model in pending:
                evaluate(args, info, model, test, gt_file, test_ds.files.classes)
        rows = [json.loads(f.read_text()) for f in sorted(out.glob("*/eval_test.json"))]
        md = table(rows)
        atomic_write(out / "summary.md", md + "\n")
        print(md)
        return
    t0 = time.perf_counter()
    # Training graphs hold the ground-truth boxes as extra foreground nodes
    # (SSN / P-GCN "gt_as_fg"); the validation videos' graphs must not.
    train_ds = SyntheticTAL(args.root, size=size, subset="train", graph="proposal",
                            graph_kwargs={"add_gt": not args.no_gt_as_fg})
    classes = train_ds.files.classes
    gt_file = train_ds.files.annotation_file
    tr_idx, val_idx = split_train_val(len(train_ds), args.val_fraction, args.split_seed)
    train = [train_ds[i] for i in tr_idx]
    val = [drop_gt_nodes(train_ds[i]) for i in val_idx]
    print(f"data: {len(train)} train / {len(val)} val videos, "
          f"{sum(g.num_nodes for g in train)} training nodes, D={train[0].x.size(1)} "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)
    trained = []
    for seed in args.seeds:
        for name in args.methods:
            trained.append(run(args, name, METHODS[name], seed, train, val, gt_file,
                               classes, out))
    # The test subset is loaded only now, after every model is trained and chosen.
    test_ds = SyntheticTAL(args.root, size=size, subset="test", graph="proposal")
    test = [test_ds[i] for i in range(len(test_ds))]
    rows = [evaluate(args, info, model, test, gt_file, classes)
            if not (Path(info["run_dir"]) / "eval_test.json").exists()
            else json.loads((Path(info["run_dir"]) / "eval_test.json").read_text())
            for info, model in trained]
    def flag(k, v):
        name = "--" + k.replace("_", "-")
        if v is True:
            return name
        vals = v if isinstance(v, list) else [v]
        return f"{name} {' '.join(shlex.quote(str(x)) for x in vals)}"

    cmd = "PYTHONPATH=. python examples/pgcn_synthetic.py " + " ".join(
        flag(k, v) for k, v in vars(args).items()
        if v is not False and k not in ("resume", "no_progress", "threads", "summarize",
                                        "neighbour_labels"))
    print(table(rows))
    print(cmd)


if __name__ == "__main__":
    main()
