"""``tagraph plot``: timeline of one video (ground truth vs top predictions, optional CAS)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tagraph.commands._common import run_guarded

EPILOG = """\
examples (after 'tagraph demo', which writes ./tagraph_demo and caches the synthetic data
under ~/.cache/tagraph):
  tagraph plot --results tagraph_demo/pgcn/results_test.json \\
      --gt ~/.cache/tagraph/demo_small/raw/synthetic-*/annotations.json \\
      --video synthetic_test_0000050 --out timeline.png
  tagraph plot --results tagraph_demo/ecm/results_test.json \\
      --gt ~/.cache/tagraph/demo_small/raw/synthetic-*/annotations.json \\
      --video synthetic_test_0000050 --checkpoint tagraph_demo/ecm/best.pt
  tagraph plot --results examples/data/example_results.json \\
      --gt examples/data/example_gt.json --video video_000

With --checkpoint of a weakly-supervised model (GRN, ECM, BackTAL, ISSF), the video's class
activation sequence is drawn under the timeline (the video must be in the config's dataset):
the ground-truth classes (solid) and the model's top classes for the video (dashed), each
min-max normalised over the video (the legend gives the raw range).
Needs matplotlib (pip install 'tagraph[plot]').
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot", help="timeline plot of one video: ground truth, predictions, CAS",
        description="Plot ground truth vs the top predictions per class of one video "
        "(and the CAS of a weakly-supervised checkpoint) to a PNG / PDF / SVG.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, metavar="RESULTS.json", help="results JSON")
    p.add_argument("--gt", default=None, metavar="GT.json", help="ground-truth JSON")
    p.add_argument("--video", required=True, metavar="ID", help="video id")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output image (.png, .pdf, .svg; default: <video>.png)")
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="weakly-supervised checkpoint whose CAS to draw")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --checkpoint: override a key of its config (e.g. data.root=...)")
    p.add_argument("--top-k", type=int, default=20, help="predictions shown (default: 20)")
    p.set_defaults(func=run)
    return p


def video_cas(checkpoint: str, video_id: str, overrides: list[str] = ()) -> dict[str, Any]:
    """``{"cas": [T, C], "cas_times": [T], "cas_predicted": [3 best classes by video
    score], "class_names": names}`` of one video from a weakly-supervised checkpoint (its
    config's test or training data)."""
    import torch

    from tagraph.engine.config import apply_overrides
    from tagraph.engine.runner import build_model, load_data
    from tagraph.engine.trainer import (
        check_checkpoint_method,
        load_model_weights,
        read_checkpoint,
    )

    ckpt = read_checkpoint(checkpoint, require=("model", "config"))
    cfg = apply_overrides(ckpt.get("config") or {}, overrides)
    check_checkpoint_method(ckpt, checkpoint, cfg.get("method"))
    if cfg.get("method") == "pgcn":
        raise ValueError("--checkpoint draws a CAS: it needs a weakly-supervised model "
                         "(grn, ecm, backtal, issf), not pgcn")
    data = load_data(cfg)
    graphs = [g for part in (data.test, data.train, data.val) for g in part
              if g.video_id == video_id]
    if not graphs:
        raise ValueError(f"video '{video_id}' is not in the dataset of checkpoint "
                         f"'{checkpoint}' (data.root = {cfg.get('data', {}).get('root')!r})")
    model = build_model(cfg, data.in_channels, len(data.classes))
    load_model_weights(model, ckpt, checkpoint, method=cfg.get("method"),
                       in_channels=data.in_channels, num_classes=len(data.classes))
    model.eval()
    from torch_geometric.data import Batch

    batch = Batch.from_data_list(graphs[:1])
    with torch.no_grad():
        cas, video_scores, _ = model.localization_outputs(batch)
    top = torch.topk(video_scores[0], k=min(3, video_scores.size(1))).indices.tolist()
    return {"cas": cas.numpy(), "cas_times": batch.pos.numpy(), "cas_predicted": top,
            "class_names": list(data.classes)}


def run(args: argparse.Namespace) -> int:
    def go() -> int:
        from tagraph.viz import plot_video, save_figure

        kw: dict[str, Any] = {}
        if args.checkpoint:
            kw = video_cas(args.checkpoint, args.video, args.overrides)
        fig = plot_video(args.gt, args.results, args.video, top_k=args.top_k, **kw)
        out = Path(args.out or f"{args.video}.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, out)
        print(f"wrote {out}")
        return 0

    return run_guarded("plot", go)
