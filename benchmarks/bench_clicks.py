"""BackTAL and ISSF on the synthetic THUMOS-like dataset: ablation table and speed.

Table (mAP on the synthetic test subset, tIoU 0.1:0.7, mean +- std over seeds)::

    PYTHONPATH=$PWD python benchmarks/bench_clicks.py table [--size small] [--seeds 0 1 2]

* BackTAL trained with simulated background clicks (one random click in every
  background gap, the BackTAL protocol of ``tagraph.data.clicks``) vs the same
  network trained from video labels only (``use_clicks=False``);
* ISSF (refined + memory, inference 0.6 base + 0.4 refined) vs the same network
  trained and evaluated with its base branch alone (``use_refinement=False``).

Every run trains for a fixed number of epochs and is evaluated once at the end:
no checkpoint is picked on the test set. The sizes are reduced to fit a small
shared CPU: ``--size reduced`` (64 train / 32 test short videos, 8 classes,
D = 64), hidden width 128 instead of 2048, 20 epochs, batch 4, Adam lr 1e-3
for both methods (the papers' 1e-4 / 5e-5 do not converge in 20 short epochs);
the numbers printed say what ran.

Speed (one training epoch and one inference pass of each method, videos/s,
measured side by side in one process)::

    PYTHONPATH=$PWD python benchmarks/bench_clicks.py speed [--size medium] [--hidden 2048]
"""

from __future__ import annotations

import argparse
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
from tagraph.evaluation import THUMOS14_TIOU, detection_map  # noqa: E402
from tagraph.models import ISSF, BackTAL, detection_records  # noqa: E402

#: The reduced THUMOS-like configuration of the table (fits a small shared CPU): fewer,
#: shorter videos, 8 classes, D = 64 (the "small" size's video lengths and dimension).
REDUCED = dict(num_train=64, num_test=32, num_classes=8, group_sizes=(2, 2, 2, 1, 1),
               feature_dim=64, duration_median=60.0, duration_sigma=0.35, duration_min=20.0,
               duration_max=150.0)

VARIANTS = {
    "BackTAL + background clicks": ("backtal", dict(use_clicks=True)),
    "BackTAL, video labels only": ("backtal", dict(use_clicks=False)),
    "ISSF refined + memory": ("issf", dict(use_refinement=True)),
    "ISSF base branch only": ("issf", dict(use_refinement=False)),
}


def datasets(root: str, size: str, data_seed: int, max_snippets: int | None):
    kw = dict(size=REDUCED if size == "reduced" else size, seed=data_seed, graph=None,
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


def evaluate(preds, test, classes) -> float:
    results: dict[str, list] = {d.video_id: [] for d in test}
    for vid, cls, score, start, end in preds:
        results[vid].append({"label": classes[cls], "score": float(score),
                             "segment": [float(start), float(end)]})
    pred = {"version": "tagraph", "results": results, "external_data": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = detection_map(str(test.files.annotation_file), pred, THUMOS14_TIOU, subset="Test")
    return 100.0 * float(res.average_mAP), [100.0 * float(m) for m in res.mAP]


def train_one(kind, kw, train, args, seed):
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
    trainer.fit(loader, epochs=args.epochs)
    return model, time.perf_counter() - t0


def table(args) -> None:
    train, test = datasets(args.root, args.size, args.data_seed, args.max_snippets)
    test_loader = DataLoader(test, batch_size=8)
    rows: dict[str, list[tuple[float, list[float]]]] = {k: [] for k in VARIANTS}
    for seed in args.seeds:
        for name, (kind, kw) in VARIANTS.items():
            model, secs = train_one(kind, kw, train, args, seed)
            avg, per = evaluate(predict_all(model, test_loader), test, test.classes)
            rows[name].append((avg, per))
            print(f"seed {seed} {name:30s} avg mAP {avg:6.2f}  mAP@0.5 {per[4]:6.2f} "
                  f"({secs:.0f} s)", flush=True)
    n_train, n_test = len(train), len(test)
    mean_t = sum(d.num_nodes for d in train) / n_train
    print(f"\nSyntheticTAL size={args.size!r} (data seed {args.data_seed}): {n_train} train / "
          f"{n_test} test videos, D = {train[0].x.size(1)}, mean T = {mean_t:.0f}; "
          f"hidden {args.hidden}, {args.epochs} epochs, batch {args.batch_size}, "
          f"seeds {args.seeds}")
    print("\n| method | mAP@0.1 | mAP@0.3 | mAP@0.5 | mAP@0.7 | avg 0.1:0.7 |")
    print("|---|---|---|---|---|---|")
    for name, vals in rows.items():
        cells = []
        for j in (0, 2, 4, 6):
            xs = [v[1][j] for v in vals]
            cells.append(f"{statistics.mean(xs):.1f} ± {statistics.pstdev(xs):.1f}")
        xs = [v[0] for v in vals]
        cells.append(f"{statistics.mean(xs):.1f} ± {statistics.pstdev(xs):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


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
    p.add_argument("--size", default=None, help="reduced | small | medium | full")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr-backtal", type=float, default=1e-3)
    p.add_argument("--lr-issf", type=float, default=1e-3)
    p.add_argument("--max-snippets", type=int, default=750)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a loaded shared machine)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "table":
        args.size = args.size or "reduced"
        args.hidden = args.hidden or 128
        table(args)
    else:
        args.size = args.size or "medium"
        args.hidden = args.hidden or 2048
        speed(args)


if __name__ == "__main__":
    main()
