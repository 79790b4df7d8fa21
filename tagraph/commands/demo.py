"""``tagraph demo``: the whole job on the embedded synthetic dataset, in a few minutes on a CPU.

Generates (once, cached) a small synthetic THUMOS-like dataset, trains P-GCN (full
supervision) and a weakly-supervised method briefly, evaluates both on the test videos,
and writes ActivityNet results JSONs, a metrics table (stdout and ``metrics.json``), PNG
plots and an HTML report (``report.html``, see ``tagraph report``) into the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from tagraph.commands._common import run_guarded

#: Demo sizes: SyntheticTAL overrides and epochs per method. "small" is the README demo
#: (about 2 minutes on 2 CPU cores); "tiny" is for tests.
SIZES: dict[str, dict[str, Any]] = {
    "small": dict(synthetic=dict(num_train=40, num_test=20, num_classes=8,
                                 group_sizes=[2, 2, 2, 1, 1], feature_dim=64),
                  pgcn_epochs=8, weak_epochs=12),
    "tiny": dict(synthetic=dict(num_train=10, num_test=6, num_classes=4, group_sizes=[2, 1, 1],
                                feature_dim=32, duration_median=40.0, duration_max=80.0),
                 pgcn_epochs=1, weak_epochs=1),
}

EPILOG = """\
example:
  tagraph demo                      (writes into ./tagraph_demo)
  tagraph demo --out /tmp/demo --weak ecm

The synthetic data is cached under $TAGRAPH_CACHE (default ~/.cache/tagraph).
Every run folder holds config.toml, best.pt / last.pt, metrics.jsonl, train.log,
results_test.json and eval_test.json; retrain one with 'tagraph train --config
OUT/<method>/config.toml'.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help="train + evaluate P-GCN and a weakly-supervised method on synthetic data",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="tagraph_demo", metavar="DIR",
                   help="output folder (default: ./tagraph_demo)")
    p.add_argument("--size", choices=sorted(SIZES), default="small",
                   help="dataset size and training length (default: small)")
    p.add_argument("--weak", choices=["mil", "grn", "ecm", "backtal", "issf"], default="ecm",
                   help="the weakly-supervised method (default: ecm)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="where the synthetic data is generated (default: $TAGRAPH_CACHE or "
                   "~/.cache/tagraph)")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _cache(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("TAGRAPH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tagraph"


def demo_config(method: str, size: str, root: Path) -> dict[str, Any]:
    """The demo's resolved config of :obj:`method` (from ``<method>/synthetic``)."""
    from tagraph.engine.config import load_config

    s = SIZES[size]
    epochs = s["pgcn_epochs"] if method == "pgcn" else s["weak_epochs"]
    cfg = load_config(f"{method}/synthetic", [f"data.root={json.dumps(str(root))}",
                                              f"train.epochs={epochs}"])
    cfg["data"]["synthetic"] = dict(s["synthetic"])
    if method == "issf":
        cfg["model"]["max_epochs"] = epochs
        cfg["model"]["warmup_epochs"] = max(1, round(epochs * 85 / 180))
    return cfg


def run(args: argparse.Namespace) -> int:
    return run_guarded("demo", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from tagraph.engine import runner

    t0 = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = _cache(args.cache) / f"demo_{args.size}"
    say = print
    say(f"tagraph demo: output folder {out}")
    say(f"[1/4] synthetic THUMOS-like data (cached in {root})")
    from tagraph.data import generate_synthetic_tal
    from tagraph.data.synthetic import SYNTHETIC_SIZES

    syn = SIZES[args.size]["synthetic"]
    size = {**SYNTHETIC_SIZES["small"], **{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in syn.items()}}
    t1 = time.perf_counter()
    files = generate_synthetic_tal(root / "raw", size, 0)
    say(f"      {size['num_train']} training + {size['num_test']} test videos, "
        f"{size['num_classes']} classes, D = {size['feature_dim']} "
        f"({time.perf_counter() - t1:.0f} s; ground truth {files.annotation_file})")
    methods = ["pgcn", args.weak]
    summaries: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(methods):
        cfg = demo_config(m, args.size, root)
        say(f"[{2 + i}/4] train {m} ({cfg['train']['epochs']} epochs; "
            f"{runner.METHODS[m].supervision})")
        s = runner.train(cfg, out / m, device=args.device, progress=not args.quiet,
                         overwrite=True)
        summaries[m] = {k: v for k, v in s.items() if k != "history"}
    say("[4/4] evaluation and plots")
    tiou = summaries["pgcn"]["tiou"]
    metrics = {m: {"tiou": s["tiou"], "mAP": s["mAP"], "average_mAP": s["average_mAP"],
                   "best_epoch": s["best_epoch"], "val_mAP": s["val_mAP"],
                   "results": s["results"]} for m, s in summaries.items()}
    from tagraph.io import atomic_write

    atomic_write(out / "metrics.json", json.dumps(metrics, indent=1))
    head = "method   " + " ".join(f"{t:>6.1f}" for t in tiou) + "    avg"
    lines = ["mAP (%) on the synthetic test videos at tIoU:", head]
    for m, s in metrics.items():
        lines.append(f"{m:<8} " + " ".join(f"{100 * v:6.1f}" for v in s["mAP"])
                     + f" {100 * s['average_mAP']:6.1f}")
    table = "\n".join(lines)
    plots = _plots(out, root, summaries, args)
    report = _report(out, methods)
    say(table)
    for p in plots:
        say(f"plot: {p}")
    say(f"report: {report}")
    say(f"results: {', '.join(str(Path(s['results'])) for s in summaries.values())}")
    say(f"metrics: {out / 'metrics.json'}")
    say(f"done in {time.perf_counter() - t0:.0f} s; outputs in {out}")
    return 0


def _report(out: Path, methods: list[str]) -> Path:
    """``OUT/report.html``: the first method's run (P-GCN), the others beside it in the mAP
    table and plot."""
    import warnings

    from tagraph.report import run_inputs, write_report

    kw = run_inputs(out / methods[0])
    kw["title"] = f"tagraph demo: {' and '.join(methods)} on synthetic data"
    kw["sources"] = [("demo folder", str(out)), *kw["sources"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return write_report(out / "report.html", compare={
            m: out / m / "results_test.json" for m in methods[1:]}, **kw)


def _plots(out: Path, root: Path, summaries: dict[str, dict[str, Any]],
           args: argparse.Namespace) -> list[Path]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("tagraph demo: matplotlib not installed, no plots (pip install 'tagraph[plot]')")
        return []
    from tagraph.commands.plot import video_cas
    from tagraph.io import load_annotations, load_results
    from tagraph.viz import plot_map_vs_tiou, plot_video, save_figure

    paths = []
    fig = plot_map_vs_tiou({m: {"tiou": s["tiou"], "mAP": s["mAP"]} for m, s in summaries.items()},
                           title="synthetic test set")
    save_figure(fig, out / "map_vs_tiou.png")
    paths.append(out / "map_vs_tiou.png")
    gt_file = next(root.glob("raw/**/annotations.json"), None)
    res = summaries["pgcn"]["results"]
    dets = load_results(res)
    gt = load_annotations(gt_file) if gt_file is not None else None
    test_ids = sorted({str(v) for v in dets.video_id})
    if gt is not None and test_ids:
        # the test video with the most ground-truth instances
        vid = max(test_ids, key=lambda v: (len(gt[v].labels) if v in gt else -1, v))
        for m, s in summaries.items():
            kw: dict[str, Any] = {}
            if m != "pgcn":
                kw = video_cas(str(out / m / "best.pt"), vid)
            fig = plot_video(gt, s["results"], vid, title=f"{m}: {vid}", **kw)
            path = out / f"timeline_{m}_{vid}.png"
            save_figure(fig, path)
            paths.append(path)
    import matplotlib.pyplot as plt

    plt.close("all")
    return paths
