"""Weakly-supervised methods vs the MIL baseline on several feature geometries.

Runs every weakly supervised method (and each paper's ablation switch) with its
SHIPPED ``<method>/thumos14`` config through ``tagraph.engine.runner.train`` on
SyntheticTAL feature-geometry variants (:data:`tagraph.data.synthetic.SYNTHETIC_VARIANTS`:
stride 4 / 16, D = 512 / 1024 / 2048, non-negative / signed, scale x0.1 / x10,
noise, 10 / 20 classes), several seeds, one CPU budget for every run: the same
overrides for every method and variant (``--budget``: width, learning rate,
epochs), nothing else. The checkpoint is chosen on the validation split of the
training videos; test mAP (tIoU 0.1:0.7) is measured once. Prints mean +- std per
method and variant, the average over variants, each method's difference to MIL
with the standard error of that difference (the seeds are independent runs; cells
more than 2 standard errors below / above MIL are marked), each paper's direction, and
throughput (training videos/s including per-epoch validation; inference
videos/s on the test split).

    PYTHONPATH=. python benchmarks/wtal_table.py --out runs/wtal_table.jsonl --jobs 2
    PYTHONPATH=. python benchmarks/wtal_table.py --out runs/wtal_table.jsonl --summarize

Whole runs at THUMOS size (200 training videos of ~420 snippets x 512-d, the speed check's
data; 20 epochs fit 15 minutes on one thread for every method; ``--method-epochs
NAME=EPOCHS`` caps single rows)::

    PYTHONPATH=. python benchmarks/wtal_table.py --thumos-size --variants i3d512 \
        --epochs 20 --out runs/wtal_thumos.jsonl

The table's data are 100 videos (80 for training after the validation split) of ~110
snippets; THUMOS14's training-set size with the table's short videos (the size study of
``benchmarks/results/wtal_variants_200.md``) is a budget override::

    PYTHONPATH=. python benchmarks/wtal_table.py --variants i3d512 relu1024 x10noisy x0.1c10 \
        --budget "model.hidden_channels=512 optim.lr=0.001 data.synthetic.num_train=200" \
        --out runs/wtal_table_200.jsonl

Whole runs on THUMOS14's real action timings (``--timings``: SyntheticTAL features of the
variant's geometry for the 412 videos, durations, frame rates and instances of the file,
written as a THUMOS-layout folder and read by the THUMOS14 reader with each shipped
config's data settings, ``max_snippets`` included, as a user's own data)::

    PYTHONPATH=. python benchmarks/wtal_table.py --timings ../shared/data/thumos14/thumos14.json \
        --variants i3d512 --epochs 20 --out runs/wtal_timings.jsonl

Results are appended to ``--out`` (JSON lines), one per run; finished runs are
skipped when the command is run again, so it can be interrupted and continued.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

#: Table rows: name -> (method, config overrides); the ablation switches are config keys.
RUNS: dict[str, tuple[str, list[str]]] = {
    "mil": ("mil", []),
    "grn": ("grn", []),
    "grn_noreg": ("grn", ["model.regularize=false"]),
    "ecm": ("ecm", []),
    "ecm_pre": ("ecm", ["model.post_stream=false"]),
    "backtal": ("backtal", []),
    "backtal_noclicks": ("backtal", ["model.use_clicks=false"]),
    "issf": ("issf", []),
    "issf_base": ("issf", ["model.use_refinement=false"]),
}

#: Each paper's claim: (method, ablation) pairs whose first should beat the second.
DIRECTIONS = [("grn", "grn_noreg"), ("ecm", "ecm_pre"), ("backtal", "backtal_noclicks"),
              ("issf", "issf_base")]

#: The data size of a table run (each variant adds its geometry on top).
TABLE_SIZE: dict[str, Any] = dict(num_train=100, num_test=50, duration_median=60.0,
                                  duration_sigma=0.5, duration_min=15.0, duration_max=200.0)


def _budget(text: str) -> list[str]:
    return [s for s in text.split() if s]


def run_one(name: str, variant: str, seed: int, args: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(args["threads"]))
    from tagraph.engine.config import apply_overrides, load_config
    from tagraph.engine.runner import (
        build_model,
        coverage_report,
        load_data,
        predict,
        score,
        train,
    )
    from tagraph.engine.trainer import load_checkpoint

    method, ablation = RUNS[name]
    cfg = load_config(f"{method}/thumos14")
    size = args["size"]
    if size == "timings":
        # the shipped config's data settings, with the keys a user sets for a THUMOS-layout
        # folder (README): root, annotation file, feature folder, stride, window, clicks
        cfg["data"].update(dataset="thumos14", annotations=args["timings"], features="features",
                           clicks="clicks.json", **args["timings_data"][variant])
    else:
        cfg["data"].update(dataset="synthetic", root=args["root"], size="full", data_seed=0,
                           variant=variant, max_snippets=0)
        cfg["data"]["synthetic"] = dict(SPEED_SIZE if size == "thumos" else TABLE_SIZE)
    cfg["seed"] = seed
    epochs = int(args.get("method_epochs", {}).get(name, args["epochs"]))
    cfg = apply_overrides(cfg, [*args["budget"], f"train.epochs={epochs}", *ablation])
    out = Path(args["runs"]) / f"{name}_{variant}_s{seed}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_data(cfg)
        t0 = time.perf_counter()
        summary = train(cfg, out, progress=False, data=data, test=False, overwrite=True)
        t_train = time.perf_counter() - t0
        model = build_model(cfg, data.in_channels, len(data.classes))
        load_checkpoint(out / "best.pt", model, config=dict(cfg))
        t0 = time.perf_counter()
        dets = predict(cfg, model, data.test, data.classes)
        t_pred = time.perf_counter() - t0
    ids = [g.video_id for g in data.test]
    res = score(dets, data.gt, ids, cfg["eval"]["tiou"])
    cov = coverage_report(dets, data.gt, ids)
    hist = summary["history"]
    loss_key = "loss"
    return dict(
        name=name, method=method, variant=variant, seed=seed, epochs=epochs,
        size=size, synthetic=dict(cfg["data"].get("synthetic", {})),  # after the budget
        budget=args["budget"], mAP=[float(v) for v in res.mAP], avg=float(res.average_mAP),
        val_mAP=float(summary["val_mAP"]), best_epoch=summary["best_epoch"],
        first_loss=float(hist[0][loss_key]), last_loss=float(hist[-1][loss_key]),
        predictions=len(dets), test_videos=len(ids), positive_videos=cov.positive_videos,
        positive_without=cov.positive_videos_without_predictions,
        train_videos_per_s=len(data.train) * epochs / t_train,
        infer_videos_per_s=len(ids) / t_pred, train_s=t_train,
        in_channels=data.in_channels, classes=len(data.classes),
    )


#: THUMOS14-sized data of the speed check: 200 training videos of ~400 snippets x 512-d.
SPEED_SIZE: dict[str, Any] = dict(num_train=200, num_test=50, duration_median=213.0,
                                  duration_sigma=0.25, duration_min=100.0, duration_max=400.0)


def speed_one(name: str, args: dict[str, Any]) -> dict[str, Any]:
    r"""One training epoch (forward, backward, step over every training video) and
    inference on the test videos, timed, with the shipped ``thumos14`` config at the
    budget's width on the ``i3d512`` geometry at :data:`SPEED_SIZE`."""
    import torch

    torch.set_num_threads(int(args["threads"]))
    from tagraph.engine.config import apply_overrides, load_config
    from tagraph.engine.runner import build_model, build_optimizer, load_data, predict, train_loader

    method, ablation = RUNS[name]
    cfg = load_config(f"{method}/thumos14")
    cfg["data"].update(dataset="synthetic", root=args["root"], size="full", data_seed=0,
                       variant="i3d512", max_snippets=0)
    cfg["data"]["synthetic"] = dict(SPEED_SIZE)
    cfg = apply_overrides(cfg, [*args["budget"], "train.epochs=1", *ablation])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_data(cfg)
        torch.manual_seed(0)
        model = build_model(cfg, data.in_channels, len(data.classes))
        model.fit_input_norm(data.train)
        opt = build_optimizer(cfg, model)
        model.train()
        t0 = time.perf_counter()
        for batch in train_loader(cfg, model, data.train, 0):
            loss, _ = model.training_step(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t_epoch = time.perf_counter() - t0
        t0 = time.perf_counter()
        predict(cfg, model, data.val, data.classes)
        t_val = time.perf_counter() - t0
        t0 = time.perf_counter()
        predict(cfg, model, data.test, data.classes)
        t_test = time.perf_counter() - t0
    snippets = sum(int(g.num_nodes) for g in data.train) / len(data.train)
    return dict(name=name, train_videos=len(data.train), mean_snippets=snippets,
                epoch_s=t_epoch, val_s=t_val, train_videos_per_s=len(data.train) / t_epoch,
                infer_videos_per_s=len(data.test) / t_test,
                epochs_in_15_min=int(900 // (t_epoch + t_val)))


def _key(r: dict[str, Any]) -> tuple:
    return (r["name"], r["variant"], r["seed"], r["epochs"], tuple(r["budget"]),
            r.get("size", "table"))


def _pm(values: list[float]) -> str:
    if not values:
        return "-"
    m = 100 * statistics.fmean(values)
    s = 100 * statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{m:.1f} ± {s:.1f}"


def mil_difference(method: list[float], mil: list[float]) -> tuple[float, float | None]:
    r"""Difference of the seed means (method - mil) and its standard error
    :math:`\sqrt{s_a^2 / n_a + s_b^2 / n_b}` (sample variances of the two sets of
    independent runs; ``None`` with fewer than 2 runs on either side)."""
    d = statistics.fmean(method) - statistics.fmean(mil)
    if len(method) < 2 or len(mil) < 2:
        return d, None
    return d, math.sqrt(statistics.variance(method) / len(method)
                        + statistics.variance(mil) / len(mil))


def _difference_table(names: list[str], variants: list[str],
                      by: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    lines = ["", "Difference to MIL (mean over seeds, points of test avg mAP) ± its standard "
             "error (the seeds are independent runs of one data set: no pairing); `<` marks a "
             "cell more than 2 standard errors below MIL, `>` one more than 2 above:", "",
             "| run | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for n in names:
        if n == "mil":
            continue
        cells = []
        for v in variants:
            a = [100 * r["avg"] for r in by[(n, v)]]
            b = [100 * r["avg"] for r in by[("mil", v)]]
            if not a or not b:
                cells.append("-")
                continue
            d, se = mil_difference(a, b)
            if se is None:
                cells.append(f"{d:+.1f}")
                continue
            mark = " <" if d < -2 * se else (" >" if d > 2 * se else "")
            cells.append(f"{d:+.1f} ± {se:.1f}{mark}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def summarize(rows: list[dict[str, Any]]) -> str:
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    names = [n for n in RUNS if any(r["name"] == n for r in rows)]
    by = defaultdict(list)
    for r in rows:
        by[(r["name"], r["variant"])].append(r)
    common = [v for v in variants if all(by[(n, v)] for n in names)]
    seeds = {v: sorted({r["seed"] for n in names for r in by[(n, v)]}) for v in variants}
    lines = ["Test avg mAP (%) over tIoU 0.1:0.7, mean ± std over seeds (seeds per variant: "
             + ", ".join(f"{v} {len(seeds[v])}" for v in variants) + "); last column: mean "
             "of the variants' means over the variants every row has ("
             + (", ".join(common) or "none") + ").", "",
             "| run | " + " | ".join(variants) + " | mean |",
             "|---|" + "---|" * (len(variants) + 1)]
    means: dict[tuple[str, str], float] = {}
    for n in names:
        cells = []
        for v in variants:
            vals = [r["avg"] for r in by[(n, v)]]
            cells.append(_pm(vals))
            if vals:
                means[(n, v)] = statistics.fmean(vals)
        allv = [means[(n, v)] for v in common]
        cells.append(f"{100 * statistics.fmean(allv):.1f}" if allv else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    if "mil" in names:
        lines += _difference_table(names, variants, by)
    lines += ["", "Against the MIL baseline (per variant, mean over seeds), and each paper's "
              "direction (mean over the runs both rows have):", ""]
    for n in names:
        if n == "mil":
            continue
        beats = [v for v in variants if (n, v) in means and ("mil", v) in means
                 and means[(n, v)] >= means[("mil", v)]]
        have = [v for v in variants if (n, v) in means and ("mil", v) in means]
        empty = sum(r["positive_without"] for v in variants for r in by[(n, v)])
        miss = sorted(set(have) - set(beats))
        ratio = ""
        mil_mean = statistics.fmean(means[("mil", v)] for v in have) if have else 0.0
        if mil_mean > 0:
            ratio = f" ({statistics.fmean(means[(n, v)] for v in have) / mil_mean:.2f} x mil)"
        lines.append(f"- {n}: >= mil on {len(beats)} of {len(have)} variants{ratio}"
                     f"{' (not on: ' + ', '.join(miss) + ')' if miss else ''}"
                     f"; positive test videos without any detection, summed over runs: {empty}")
    for a, b in DIRECTIONS:  # over the variants and seeds both rows have
        both = [(v, s) for v in variants for s in seeds[v]
                if any(r["seed"] == s for r in by[(a, v)])
                and any(r["seed"] == s for r in by[(b, v)])]
        va = [r["avg"] for v, s in both for r in by[(a, v)] if r["seed"] == s]
        vb = [r["avg"] for v, s in both for r in by[(b, v)] if r["seed"] == s]
        if va and vb:
            ma, mb = 100 * statistics.fmean(va), 100 * statistics.fmean(vb)
            lines.append(f"- {a} {ma:.1f} vs {b} {mb:.1f}: "
                         f"{'holds' if ma > mb else 'does NOT hold'} ({ma - mb:+.1f})")
    lines += ["", "| run | epochs | train s (incl. validation) | train videos/s | "
              "inference videos/s | first -> last epoch loss |", "|---|---|---|---|---|---|"]
    for n in names:
        rs = [r for v in variants for r in by[(n, v)]]
        epochs = sorted({r["epochs"] for r in rs})
        lines.append(
            f"| {n} | {'/'.join(map(str, epochs))} | "
            f"{statistics.fmean(r['train_s'] for r in rs):.0f} | "
            f"{statistics.fmean(r['train_videos_per_s'] for r in rs):.1f} | "
            f"{statistics.fmean(r['infer_videos_per_s'] for r in rs):.1f} | "
            f"{statistics.fmean(r['first_loss'] for r in rs):.3f} -> "
            f"{statistics.fmean(r['last_loss'] for r in rs):.3f} |")
    return "\n".join(lines)


def main() -> None:
    from tagraph.data.synthetic import SYNTHETIC_VARIANTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/wtal_data", help="synthetic data folder")
    p.add_argument("--runs", default="runs/wtal_runs", help="run folders")
    p.add_argument("--out", default="runs/wtal_table.jsonl")
    p.add_argument("--variants", nargs="+", default=list(SYNTHETIC_VARIANTS),
                   choices=list(SYNTHETIC_VARIANTS))
    p.add_argument("--methods", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15, help="train.epochs cap (CPU budget)")
    p.add_argument("--budget", type=_budget,
                   default=_budget("model.hidden_channels=512 optim.lr=0.001"),
                   help="config overrides applied to EVERY run (the CPU budget)")
    p.add_argument("--jobs", type=int, default=1, help="parallel runs (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--summarize", action="store_true", help="only print the table of --out")
    p.add_argument("--speed", action="store_true",
                   help="time one epoch and inference per method on 200 videos of ~400 "
                        "snippets x 512-d (i3d512), and the epochs that fit in 15 minutes")
    p.add_argument("--thumos-size", action="store_true",
                   help="whole runs at the speed check's size (200 training videos of ~400 "
                        "snippets x 512-d) instead of the table's; use with --variants i3d512")
    p.add_argument("--timings", metavar="JSON",
                   help="whole runs on SyntheticTAL features for the videos and action timings "
                        "of this ActivityNet-style file (e.g. ../shared/data/thumos14/"
                        "thumos14.json: THUMOS14's real timings), read through the THUMOS14 "
                        "reader with the shipped data settings (max_snippets included), as a "
                        "user's own THUMOS-layout folder")
    p.add_argument("--method-epochs", nargs="*", default=[], metavar="NAME=EPOCHS",
                   help="per-row train.epochs caps (e.g. backtal=10), else --epochs")
    args = p.parse_args()
    method_epochs = {k: int(v) for k, v in (x.split("=", 1) for x in args.method_epochs)}
    if args.speed:
        kw = dict(root=args.root, budget=args.budget, threads=args.threads)
        print(f"load {os.getloadavg()[0]:.1f}, {args.threads} thread(s)\n")
        print("| run | mean T | train videos/s | inference videos/s | epoch + validation (s) "
              "| epochs in 15 min |\n|---|---|---|---|---|---|", flush=True)
        for n in args.methods:
            r = speed_one(n, kw)
            print(f"| {n} | {r['mean_snippets']:.0f} | {r['train_videos_per_s']:.1f} | "
                  f"{r['infer_videos_per_s']:.1f} | {r['epoch_s']:.0f} + {r['val_s']:.0f} | "
                  f"{r['epochs_in_15_min']} |", flush=True)
        return
    out = Path(args.out)
    rows = [json.loads(x) for x in out.read_text().splitlines() if x.strip()] \
        if out.is_file() else []
    if not args.summarize:
        done = {_key(r) for r in rows}
        size = "timings" if args.timings else "thumos" if args.thumos_size else "table"
        todo = [(n, v, s) for s in args.seeds for v in args.variants for n in args.methods
                if (n, v, s, method_epochs.get(n, args.epochs), tuple(args.budget), size)
                not in done]
        # generate each variant's data once, before the parallel runs
        from tagraph.data.synthetic import generate_synthetic_features, generate_synthetic_tal

        timings_data = {}
        for v in args.variants:
            if args.timings:
                f = generate_synthetic_features(args.timings, Path(args.root) / "timings",
                                                dict(SYNTHETIC_VARIANTS[v]), 0)
                timings_data[v] = dict(root=str(f.folder),
                                       feature_stride=float(f.config["stride"]),
                                       feature_window=float(f.config["window"]))
                continue
            generate_synthetic_tal(Path(args.root) / "raw", {
                **(SPEED_SIZE if args.thumos_size else TABLE_SIZE), **SYNTHETIC_VARIANTS[v]}, 0)
        kw = dict(root=args.root, runs=args.runs, epochs=args.epochs, budget=args.budget,
                  threads=args.threads, size=size,
                  method_epochs=method_epochs,
                  timings=str(Path(args.timings).resolve()) if args.timings else None,
                  timings_data=timings_data)
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"{len(todo)} runs ({len(rows)} done) on {args.jobs} process(es), load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(run_one, n, v, s, kw) for n, v, s in todo]
            for f in futures:
                r = f.result()
                r["load"] = os.getloadavg()[0]
                rows.append(r)
                with out.open("a") as fh:
                    fh.write(json.dumps(r) + "\n")
                print(f"{r['name']:17s} {r['variant']:13s} seed {r['seed']}: avg "
                      f"{100 * r['avg']:5.1f}  val {100 * r['val_mAP']:5.1f}  "
                      f"{r['predictions']} preds  {r['train_s']:.0f} s", flush=True)
    print(summarize(rows))


if __name__ == "__main__":
    main()
