"""How well a trained weakly-supervised checkpoint's CAS localises, independent of any
detection threshold: per (test video, ground-truth class) ROC-AUC of the CAS column against
"snippet inside a ground-truth segment of that class" (0.5 = chance), how often the video's
best class is a ground-truth class, for ISSF the AUC of its class-agnostic attention
against "inside any action" and the share of snippets its pseudo labels (the soft
targets the base branch is taught with, ``ISSF.pseudo_labels``) and its base branch call
background, beside the share outside every ground-truth segment, and for ECM the mean
aggregation weight :math:`w` of each ground-truth class inside and outside that class's
segments (a weight near 1 everywhere means the post stream aggregates the whole video)::

    PYTHONPATH=. python benchmarks/wtal_cas_quality.py runs/wtal_runs/mil_i3d512_s2 \\
        runs/wtal_runs/issf_i3d512_s2

Run folders are those of ``benchmarks/wtal_table.py`` (or ``tagraph train``). ``--split val``
scores the validation videos instead (for choosing hyper-parameters).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from tagraph.engine.config import load_config
from tagraph.engine.runner import build_model, load_data
from tagraph.engine.trainer import load_checkpoint


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    r"""ROC-AUC by the rank-sum formula (ties broken by order); NaN without both classes."""
    pos, neg = score[positive], score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def inside(pos: np.ndarray, segments: np.ndarray) -> np.ndarray:
    out = np.zeros(len(pos), dtype=bool)
    for s, e in segments:
        out |= (pos >= s) & (pos <= e)
    return out


@torch.no_grad()
def quality(run: Path, split: str = "test") -> dict[str, float]:
    cfg = load_config(run / "config.toml", validate=False)
    data = load_data(cfg)
    model = build_model(cfg, data.in_channels, len(data.classes))
    load_checkpoint(run / "best.pt", model, config=None)
    model.eval()
    cas_auc, top_ok, att_auc = [], [], []
    pl_bg, base_bg, gt_bg = [], [], []
    w_in, w_out = [], []
    for g in getattr(data, split):
        labels, seg = g.gt_labels.numpy(), g.gt_segments.numpy()
        if not len(labels):
            continue
        batch = next(iter(DataLoader([g], batch_size=1)))
        cas, video, _ = model.localization_outputs(batch)
        cas, pos = cas.numpy(), g.pos.numpy()
        top_ok.append(int(video[0].argmax()) in set(labels.tolist()))
        for c in sorted(set(labels.tolist())):
            cas_auc.append(auc(cas[:, c], inside(pos, seg[labels == c])))
        if cfg["method"] == "issf":
            from tagraph.models._snippet_batch import snippet_batch

            sb = snippet_batch(batch, model.temporal_offsets, model.input_norm)
            base = model._forward(sb, refine=False).base
            att_auc.append(auc(base.attention.numpy(), inside(pos, seg)))
            bg = model.num_classes
            base_bg.append(float((base.frame_logits.argmax(-1) == bg).float().mean()))
            gt_bg.append(float((~inside(pos, seg)).mean()))
            if model.use_refinement:
                pl_bg.append(float((model.pseudo_labels(batch).argmax(-1) == bg).float().mean()))
        if cfg["method"] == "ecm" and model.post_stream:
            # ECM's post-stream aggregation weights w of the ground-truth classes
            w = model.forward(batch)["w"].numpy()
            for c in sorted(set(labels.tolist())):
                ins = inside(pos, seg[labels == c])
                w_in.append(w[ins, c].mean() if ins.any() else np.nan)
                w_out.append(w[~ins, c].mean() if (~ins).any() else np.nan)
    out = {"cas_auc": float(np.nanmean(cas_auc)), "top_class_is_gt": float(np.mean(top_ok))}
    if att_auc:
        out["attention_auc"] = float(np.nanmean(att_auc))
    if base_bg:
        out["issf_base_bg"] = float(np.mean(base_bg))
        out["gt_bg"] = float(np.mean(gt_bg))
    if pl_bg:
        out["issf_pseudo_bg"] = float(np.mean(pl_bg))
    if w_in:
        out["ecm_w_inside"] = float(np.nanmean(w_in))
        out["ecm_w_outside"] = float(np.nanmean(w_out))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--split", choices=["val", "test"], default="test",
                   help="videos scored: the validation split (for selection) or the test split")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print("| run | CAS AUC | best class is GT | ISSF attention AUC | ISSF background share: "
          "pseudo labels / base branch / ground truth | ECM w of GT class inside "
          "/ outside its segments |")
    print("|---|---|---|---|---|---|")
    for run in a.runs:
        q = quality(run, a.split)
        att = f"{q['attention_auc']:.3f}" if "attention_auc" in q else "-"
        w = (f"{q['ecm_w_inside']:.2f} / {q['ecm_w_outside']:.2f}" if "ecm_w_inside" in q
             else "-")
        bg = "-"
        if "gt_bg" in q:
            pl = f"{q['issf_pseudo_bg']:.2f}" if "issf_pseudo_bg" in q else "-"
            bg = f"{pl} / {q['issf_base_bg']:.2f} / {q['gt_bg']:.2f}"
        print(f"| {run.name} | {q['cas_auc']:.3f} | {q['top_class_is_gt']:.2f} | {att} | {bg} "
              f"| {w} |")


if __name__ == "__main__":
    main()
