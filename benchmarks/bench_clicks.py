"""BackTAL and ISSF on the synthetic THUMOS-like dataset: ablation table and speed.

Table (mAP on the synthetic test subset, tIoU 0.1:0.7, mean +- std over seeds)::

    PYTHONPATH=$PWD python benchmarks/bench_clicks.py table --size table --epochs 40 \
        --eval-every 2 --seeds 0 1 2 --out runs.jsonl

* BackTAL trained with simulated background clicks (one random click in every
  background gap, the BackTAL protocol of ``tagraph.data.clicks``) vs the same
  network trained from video labels only (``use_clicks=False``);
* ISSF (refined + memory, inference 0.6 base + 0.4 refined) vs the same network
  trained and evaluated with its base branch alone (``use_refinement=False``).

Protocol: a fixed 20 % of the training videos (split seed 1234, the runner's
:func:`~tagraph.engine.runner.split_train_val`) is held out; every
``--eval-every`` epochs the validation mAP is measured and the best weights
kept; those weights are evaluated once on the test subset (never used for
selection). Sizes are reduced for a small shared CPU: ``--size table`` (160
training videos = 128 train + 32 validation, 96 test videos of about 60 s, 8
classes, D = 64, full noise), hidden width 128 instead of 2048, batch 4, Adam
lr 1e-3 for both methods (the papers' 1e-4 / 5e-5 are for 40 / 180 long
epochs), ISSF's memory warm-up 85/180 of the epochs. ``--crop T`` trains on
random windows of T snippets (fixed-T training). Each run also prints
diagnostics on the test videos: BackTAL, the min-max normalised suppressed CAS
of the ground-truth classes at action / background snippets and its AUC; ISSF,
how far the refined branch's frame distribution is from the base branch's and
the test mAP of the full model's base branch alone. ``--out`` appends one JSON
line per run (``--resume`` skips the runs already there).

Speed (one training epoch and one inference pass of each method, videos/s,
measured side by side in one process)::

    PYTHONPATH=$PWD python benchmarks/bench_clicks.py speed [--size medium] [--hidden 2048]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from torch_geometric.loader import DataLoader  # noqa: E402

from tagraph.data import SyntheticTAL  # noqa: E402
from tagraph.engine import Trainer  # noqa: E402
from tagraph.engine.runner import score, split_train_val  # noqa: E402
from tagraph.evaluation import THUMOS14_TIOU  # noqa: E402
from tagraph.io import Detections, load_annotations  # noqa: E402
from tagraph.models import ISSF, BackTAL, detection_records  # noqa: E402
from tagraph.transforms import RandomSnippetCrop  # noqa: E402

#: The reduced THUMOS-like configuration of the table (fits a small shared CPU): fewer,
#: shorter videos, 8 classes, D = 64 (the "small" size's video lengths and dimension).
REDUCED = dict(num_train=64, num_test=32, num_classes=8, group_sizes=(2, 2, 2, 1, 1),
               feature_dim=64, duration_median=60.0, duration_sigma=0.35, duration_min=20.0,
               duration_max=150.0)

#: The table's configuration: the reduced videos, more of them (less noisy test mAP).
TABLE = {**REDUCED, "num_train": 160, "num_test": 96}

VARIANTS = {
    "BackTAL + background clicks": ("backtal", dict(use_clicks=True)),
    "BackTAL, video labels only": ("backtal", dict(use_clicks=False)),
    "ISSF refined + memory": ("issf", dict(use_refinement=True)),
    "ISSF base branch only": ("issf", dict(use_refinement=False)),
}


def datasets(root: str, size: str, data_seed: int, max_snippets: int | None):
    named = {"reduced": REDUCED, "table": TABLE}
    kw = dict(size=named.get(size, size), seed=data_seed, graph=None,
              log=False, max_snippets=max_snippets)
    train = SyntheticTAL(root, subset="train", clicks="background", **kw)
    test = SyntheticTAL(root, subset="test", **kw)
    return train, test


def build(kind: str, d: int, c: int, hidden: int, epochs: int, **kw):
    if kind == "backtal":
        return BackTAL(d, c, hidden_channels=hidden, **kw)
    warm = max(1, round(epochs * 85 / 180))
    return ISSF(d, c, hidden_channels=hidden, warmup_epochs=warm, max_epochs=epochs, **kw)


def predict_all(model, loader, branch: str | None = None) -> list:
    preds = []
    for batch in loader:
        det = model.predict(batch) if branch is None else model.predict(batch, branch=branch)
        preds += detection_records(det, batch)
    return preds


def score_records(preds, graphs, gt, classes) -> tuple[float, list[float]]:
    r"""mAP (%) of :obj:`preds` on the videos of :obj:`graphs` only (the
    runner's :func:`~tagraph.engine.runner.score`: validation videos are a
    part of the training subset)."""
    records = [(v, classes[c], s, a, b) for v, c, s, a, b in preds]
    dets = Detections.from_records(records) if records else Detections.from_records([])
    res = score(dets, gt, [g.video_id for g in graphs], THUMOS14_TIOU)
    return 100.0 * float(res.average_mAP), [100.0 * float(m) for m in res.mAP]


def train_one(kind, kw, train, args, seed, val_fn=None):
    torch.manual_seed(seed)
    d, c = train[0].x.size(1), train[0].y.size(1)
    model = build(kind, d, c, args.hidden, args.epochs, **kw)
    lr = args.lr_backtal if kind == "backtal" else args.lr_issf
    betas = (0.9, 0.999) if kind == "backtal" else (0.9, 0.99)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, generator=gen)
    if kind == "issf":
        loader = model.track_epochs(loader)
    trainer = Trainer(model, opt, seed=seed, progress=False)
    t0 = time.perf_counter()
    trainer.fit(loader, epochs=args.epochs, val_fn=val_fn, select="val_mAP", mode="max")
    return model, time.perf_counter() - t0


@torch.no_grad()
def backtal_diagnostics(model: BackTAL, graphs) -> dict[str, float]:
    r"""What the clicks change in the suppressed CAS (the one localised): mean
    min-max normalised CAS of each video's ground-truth classes at background
    snippets and at action snippets, and their gap."""
    model.eval()
    bg_vals, fg_vals = [], []
    for batch in DataLoader(list(graphs), batch_size=8, follow_batch=["gt_segments"]):
        cas, _, _, sb = model._suppressed(batch)
        c = cas.size(1)
        y = batch.y.view(-1, c).bool()
        gt_batch, seg, pos = batch.gt_segments_batch, batch.gt_segments, batch.pos
        inside = (pos.unsqueeze(1) >= seg[:, 0]) & (pos.unsqueeze(1) < seg[:, 1]) & (
            sb.batch.unsqueeze(1) == gt_batch.unsqueeze(0))
        act = inside.any(1)
        mask = y[sb.batch]  # [N, C] ground-truth classes of the snippet's video
        v = cas[mask]
        a = act.unsqueeze(1).expand_as(mask)[mask]
        fg_vals.append(v[a])
        bg_vals.append(v[~a])
    fg, bg = torch.cat(fg_vals), torch.cat(bg_vals)
    return {"cas_fg": float(fg.mean()), "cas_bg": float(bg.mean()),
            "cas_gap": float(fg.mean() - bg.mean()),
            "bg_above_0.5": float((bg > 0.5).float().mean()), "auc": _auc(fg, bg)}


def _auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    r"""Probability that a positive outranks a negative (ties count half)."""
    vals = torch.cat([pos, neg]).double()
    order = torch.argsort(vals, stable=True)
    ranks = torch.empty_like(vals)
    ranks[order] = torch.arange(1, vals.numel() + 1, dtype=vals.dtype)
    uniq, inv = torch.unique(vals, return_inverse=True)  # average ranks of ties
    mean_rank = torch.zeros_like(uniq).index_add_(0, inv, ranks) / torch.bincount(inv)
    r = mean_rank[inv][: pos.numel()].sum()
    n_p, n_n = pos.numel(), neg.numel()
    return float((r - n_p * (n_p + 1) / 2) / max(n_p * n_n, 1))


@torch.no_grad()
def issf_diagnostics(model: ISSF, graphs) -> dict[str, float]:
    r"""How much the refined branch differs from the base branch: mean total
    variation distance of their frame class distributions, and the mean
    absolute difference of the attention-weighted frame scores."""
    if not model.use_refinement:
        return {}
    tv, dscore = [], []
    for batch in DataLoader(list(graphs), batch_size=8):
        _, frm_b, _ = model.scores(batch, "base")
        _, frm_r, _ = model.scores(batch, "refined")
        _, frm, _ = model.scores(batch, "both")
        tv.append(0.5 * (frm_r - frm_b).abs().sum(-1))
        dscore.append((frm - frm_b).abs().mean(-1))
    return {"frame_tv_refined_vs_base": float(torch.cat(tv).mean()),
            "frame_score_diff_both_vs_base": float(torch.cat(dscore).mean())}


def run_one(name, kind, kw, data, args, seed) -> dict:
    train, val, test, gt, classes = data
    val_loader = DataLoader(list(val), batch_size=8)
    best: dict = {"mAP": -1.0, "state": None, "epoch": 0}
    epoch = [0]
    curve: list[float] = []

    def val_fn(m) -> dict[str, float]:
        epoch[0] += 1
        if epoch[0] % args.eval_every and epoch[0] != args.epochs:
            return {"val_mAP": -1.0}
        avg, _ = score_records(predict_all(m, val_loader), val, gt, classes)
        curve.append(avg)
        if avg > best["mAP"]:
            best.update(mAP=avg, state=copy.deepcopy(m.state_dict()), epoch=epoch[0])
        return {"val_mAP": avg}

    model, secs = train_one(kind, kw, train, args, seed, val_fn)
    model.load_state_dict(best["state"])
    if args.save_dir:
        folder = Path(args.save_dir)
        folder.mkdir(parents=True, exist_ok=True)
        slug = name.lower().replace(" ", "_").replace(",", "").replace("+", "plus")
        torch.save(best["state"], folder / f"{slug}_seed{seed}.pt")
    test_loader = DataLoader(list(test), batch_size=8)
    avg, per = score_records(predict_all(model, test_loader), test, gt, classes)
    out = {"name": name, "seed": seed, "best_epoch": best["epoch"], "val_avg": best["mAP"],
           "val_curve": [round(v, 2) for v in curve],
           "test_avg": avg, "test_mAP": per, "train_seconds": secs}
    if kind == "backtal":
        out["diag"] = backtal_diagnostics(model, test)
    elif model.use_refinement:
        out["diag"] = issf_diagnostics(model, test)
        b_avg, b_per = score_records(predict_all(model, test_loader, "base"), test, gt, classes)
        out["diag"].update(test_avg_base_branch_of_full=b_avg)
    return out


def load_split(args):
    train_ds, test = datasets(args.root, args.size, args.data_seed, args.max_snippets)
    tr_idx, val_idx = split_train_val(len(train_ds), args.val_fraction, 1234)
    train, val = train_ds[tr_idx], train_ds[val_idx]
    if args.crop:
        train = copy.copy(train)
        train.transform = RandomSnippetCrop(args.crop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gt = load_annotations(train_ds.files.annotation_file)
    return (train, val, test, gt, list(test.classes)), train_ds


def print_table(results: list[dict], header: str = "") -> None:
    if header:
        print(header)
    print("\n| method | mAP@0.1 | mAP@0.3 | mAP@0.5 | mAP@0.7 | avg 0.1:0.7 | val avg "
          "| best epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        vals = [r for r in results if r["name"] == name]
        if not vals:
            continue
        cells = []
        for j in (0, 2, 4, 6):
            xs = [v["test_mAP"][j] for v in vals]
            cells.append(f"{statistics.mean(xs):.1f} ± {statistics.pstdev(xs):.1f}")
        for key in ("test_avg", "val_avg"):
            xs = [v[key] for v in vals]
            cells.append(f"{statistics.mean(xs):.1f} ± {statistics.pstdev(xs):.1f}")
        cells.append(",".join(str(v["best_epoch"]) for v in vals))
        print(f"| {name} | " + " | ".join(cells) + " |")
    diag = [r for r in results if r.get("diag")]
    if diag:
        print("\ndiagnostics on the test videos (mean over seeds):")
        for name in VARIANTS:
            ds = [r["diag"] for r in diag if r["name"] == name]
            if ds:
                keys = ds[0].keys()
                print(f"  {name}: " + ", ".join(
                    f"{k} {statistics.mean(d[k] for d in ds):.3f}" for k in keys))


def table(args) -> None:
    data, train_ds = load_split(args)
    train, val, test = data[:3]
    results: list[dict] = []
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and args.resume:
        results = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    done = {(r["name"], r["seed"]) for r in results}
    variants = [v for v in VARIANTS if args.variants is None or v in args.variants]
    for seed in args.seeds:
        for name in variants:
            if (name, seed) in done:
                continue
            kind, kw = VARIANTS[name]
            r = run_one(name, kind, kw, data, args, seed)
            results.append(r)
            print(json.dumps(r), flush=True)
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                with out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
    mean_t = sum(d.num_nodes for d in train_ds) / len(train_ds)
    header = (f"\nSyntheticTAL size={args.size!r} (data seed {args.data_seed}): "
              f"{len(train)} train / {len(val)} val (checkpoint selection) / {len(test)} test "
              f"videos, D = {train_ds[0].x.size(1)}, mean T = {mean_t:.0f}; hidden "
              f"{args.hidden}, {args.epochs} epochs (val every {args.eval_every}), batch "
              f"{args.batch_size}, lr BackTAL {args.lr_backtal} / ISSF {args.lr_issf}, "
              f"train crop {args.crop or 'none'}, seeds {args.seeds}")
    print_table(results, header)


def speed(args) -> None:
    train, test = datasets(args.root, args.size, args.data_seed, args.max_snippets)
    n = len(train)
    mean_t = sum(d.num_nodes for d in train) / n
    print(f"SyntheticTAL size={args.size!r}: {n} train videos, D = {train[0].x.size(1)}, "
          f"mean T = {mean_t:.0f}, hidden {args.hidden}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()} (shared machine: compare ratios)")
    print("\n| method | train epoch (videos/s) | inference (videos/s) |")
    print("|---|---|---|")
    for name, (kind, kw) in VARIANTS.items():
        torch.manual_seed(0)
        args_one = argparse.Namespace(**{**vars(args), "epochs": 1})
        model, secs = train_one(kind, kw, train, args_one, 0)
        loader = DataLoader(test, batch_size=args.batch_size)
        t0 = time.perf_counter()
        predict_all(model, loader)
        inf = time.perf_counter() - t0
        print(f"| {name} | {n / secs:.1f} | {len(test) / inf:.1f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["table", "speed"])
    p.add_argument("--root", default="data/synthetic_clicks")
    p.add_argument("--size", default=None, help="table | reduced | small | medium | full")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr-backtal", type=float, default=1e-3)
    p.add_argument("--lr-issf", type=float, default=1e-3)
    p.add_argument("--max-snippets", type=int, default=750)
    p.add_argument("--crop", type=int, default=0,
                   help="fixed-T training: random crop of T snippets (0 = whole videos)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--eval-every", type=int, default=2,
                   help="validation mAP every N epochs (and after the last)")
    p.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS))
    p.add_argument("--out", default=None, help="JSON-lines file of the runs (appended)")
    p.add_argument("--resume", action="store_true", help="skip the runs already in --out")
    p.add_argument("--save-dir", default=None, help="save the selected weights of every run here")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a loaded shared machine)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "table":
        args.size = args.size or "table"
        args.hidden = args.hidden or 128
        table(args)
    else:
        args.size = args.size or "medium"
        args.hidden = args.hidden or 2048
        speed(args)


if __name__ == "__main__":
    main()
