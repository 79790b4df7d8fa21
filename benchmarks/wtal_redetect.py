"""Re-detect trained weakly-supervised checkpoints with candidate CAS -> detection settings.

Chooses post-processing on the **validation split** (the training videos held out by the
runner), without retraining; test mAP is printed for information only. Run folders are
those of ``benchmarks/wtal_table.py`` (``--runs``)::

    PYTHONPATH=. python benchmarks/wtal_redetect.py --runs runs/wtal_runs \\
        --methods issf grn --seeds 2 --out runs/redetect.jsonl

Candidates (``CANDIDATES``) are ``CASDetectionConfig`` overrides of the model's own
(paper) settings, or of ``tagraph.models.wtal_detection_config`` (``shared:``), and
optionally inference attributes of the model (``MODEL_ATTRS``, e.g. ISSF's
``attention_scoring``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from operator import attrgetter
from pathlib import Path

import torch

from tagraph.engine.config import load_config
from tagraph.engine.runner import build_model, load_data, predict, score
from tagraph.engine.trainer import load_checkpoint
from tagraph.models import wtal_detection_config
from tagraph.ops.cas import threshold_range

TIOU = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]

#: name -> (base, overrides); base "own" = the model's shipped settings, "shared" = wtal's.
CANDIDATES: dict[str, tuple[str, dict]] = {
    "own": ("own", {}),
    "own_len1": ("own", {"min_length": 1}),
    "own_lambda0": ("own", {"outer_lambda": 0.0}),
    "own_lambda0.25": ("own", {"outer_lambda": 0.25}),
    "own_lambda0.25_gamma0.2": ("own", {"outer_lambda": 0.25, "gamma": 0.2}),
    "own_gamma0.2": ("own", {"gamma": 0.2}),
    "own_minmax": ("own", {"normalize": "minmax", "thresholds": threshold_range(0.1, 0.9, 0.05)}),
    "own_minmax_cls": ("own", {"normalize": "minmax",
                               "thresholds": threshold_range(0.1, 0.9, 0.05),
                               "class_relative": True, "class_threshold": 0.25}),
    "own_rel0.25": ("own", {"class_relative": True, "class_threshold": 0.25}),
    "own_rel0.5": ("own", {"class_relative": True, "class_threshold": 0.5}),
    "shared_r0.25": ("shared", {"class_threshold": 0.25}),
    "shared_r0.5": ("shared", {"class_threshold": 0.5}),
    "own_noatt": ("own", {}),
    "own_base_branch": ("own", {}),
    "own_refined_branch": ("own", {}),
    "own_glr_mu0.5": ("own", {}),
    "own_glr_mu2": ("own", {}),
    "own_glr_mu4": ("own", {}),
}

#: candidate -> model attributes set for it (inference only; restored afterwards).
MODEL_ATTRS: dict[str, dict] = {"own_noatt": {"attention_scoring": False},
                                "own_base_branch": {"branch": "base"},
                                "own_refined_branch": {"branch": "refined"},
                                "own_glr_mu0.5": {"glr.mu": 0.5}, "own_glr_mu2": {"glr.mu": 2.0},
                                "own_glr_mu4": {"glr.mu": 4.0}}


def _has(obj, path: str) -> bool:
    try:
        attrgetter(path)(obj)
    except AttributeError:
        return False
    return True


def _set(obj, path: str, value) -> None:
    owner, _, last = path.rpartition(".")
    setattr(attrgetter(owner)(obj) if owner else obj, last, value)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/wtal_runs")
    p.add_argument("--methods", nargs="+", default=["issf", "grn"])
    p.add_argument("--seeds", nargs="+", type=int, default=[2])
    p.add_argument("--variants", nargs="+", default=None)
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    p.add_argument("--out", default="runs/redetect.jsonl")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    done = set()
    if out.is_file():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["run"], r["candidate"]))
    for run in sorted(Path(a.runs).iterdir()):
        name, variant, seed = run.name.rsplit("_", 2)
        if name not in a.methods or int(seed[1:]) not in a.seeds:
            continue
        if a.variants and variant not in a.variants:
            continue
        if not (run / "best.pt").is_file():
            continue
        cfg = load_config(run / "config.toml", validate=False)
        data = load_data(cfg)
        model = build_model(cfg, data.in_channels, len(data.classes))
        load_checkpoint(run / "best.pt", model, config=None)
        own = model.detection_config
        for cand in a.candidates:
            if (run.name, cand) in done:
                continue
            base, kw = CANDIDATES[cand]
            start = own if base == "own" else wtal_detection_config()
            model.detection_config = dataclasses.replace(start, **kw)
            attrs = MODEL_ATTRS.get(cand, {})
            if any(not _has(model, k) for k in attrs):
                continue  # this model has no such switch
            saved = {k: attrgetter(k)(model) for k in attrs}
            for k, v in attrs.items():
                _set(model, k, v)
            t0 = time.perf_counter()
            res = {}
            for split, graphs in (("val", data.val), ("test", data.test)):
                dets = predict(cfg, model, graphs, data.classes)
                res[split] = float(score(dets, data.gt, [g.video_id for g in graphs],
                                         TIOU).average_mAP)
                res[f"{split}_n"] = len(dets)
            for k, v in saved.items():
                _set(model, k, v)
            row = {"run": run.name, "method": name, "variant": variant, "seed": int(seed[1:]),
                   "candidate": cand, **res, "seconds": time.perf_counter() - t0}
            print(json.dumps(row), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
