"""ISSF's boundary refinement on THUMOS14-length videos: one grouped score matrix vs two
padded ones.

The information interaction unit (:class:`tagraph.nn.InformationInteraction`) lets every
snippet attend to its video's salient and non-salient snippets: two :math:`T \\times T`
attentions per video, which dominate ISSF's training time at THUMOS14 lengths. Compared
side by side in one process, forward + backward on the same batches:

* ``two padded``: each attention by its own batched product, every video of the batch
  padded to the longest (the implementation until December 2026);
* ``grouped``: both attentions from one score matrix (the sets are disjoint), videos of
  similar length batched together (:func:`tagraph.ops.length_groups`).

Video lengths are those of the real THUMOS14 videos (validation + test durations of
``../shared/data/thumos14/thumos14.json``) at the feature stride, when the file exists;
otherwise lengths drawn like them (log-normal, median 400 snippets)::

    PYTHONPATH=$PWD python benchmarks/bench_issf_attention.py --threads 1 --stride 16

The table also gives the largest padded score matrix (elements; float32 bytes = 4x),
which bounds the unit's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import tagraph.nn.information_interaction as ii
from tagraph.ops import length_groups

ROOT = Path(__file__).resolve().parents[1]


def thumos_lengths(stride: float, fps_default: float = 30.0) -> tuple[list[int], str]:
    for base in (ROOT / ".." / "shared" / "data", Path("/work/shared/data")):
        path = base / "thumos14" / "thumos14.json"
        if path.is_file():
            db = json.loads(path.read_text())["database"]
            out = [max(1, round(v["duration"] * float(v.get("fps") or fps_default) / stride))
                   for v in db.values()]
            return out, f"THUMOS14 durations ({len(out)} videos) at stride {stride:g}"
    g = torch.Generator().manual_seed(0)
    n = torch.exp(torch.randn(412, generator=g) * 0.7 + torch.log(torch.tensor(400.0)))
    return n.round().clamp_min(1).long().tolist(), "synthetic THUMOS-like lengths"


def two_padded(unit: ii.InformationInteraction, x, salient, batch, num_graphs):
    # The previous implementation: two padded products over the whole batch.
    f_s = x + torch.softmax(unit.mlp_salient(x), dim=-1) * x
    f_o = x + torch.softmax(unit.mlp_other(x), dim=-1) * x
    out_s = ii._dense_attention(x, f_s, [(salient, 1.0)], batch, num_graphs, 1.0)
    out_o = ii._dense_attention(x, f_o, [(~salient, 1.0)], batch, num_graphs, 1.0)
    return (1.0 - unit.mix) * out_s + unit.mix * out_o


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stride", type=float, default=16.0, help="frames between snippets")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--channels", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    lengths, source = thumos_lengths(a.stride)
    g = torch.Generator().manual_seed(a.seed)
    unit = ii.InformationInteraction(a.channels)
    times = {"two padded": 0.0, "grouped": 0.0}
    peak = {"two padded": 0, "grouped": 0}
    n_videos, max_err = 0, 0.0
    for _ in range(a.batches):
        idx = torch.randint(len(lengths), (a.batch_size,), generator=g)
        ls = torch.tensor([lengths[i] for i in idx])
        batch = torch.repeat_interleave(torch.arange(a.batch_size), ls)
        x = torch.randn(int(ls.sum()), a.channels, generator=g).relu()
        salient = torch.rand(x.size(0), generator=g) < 0.66
        peak["two padded"] = max(peak["two padded"], a.batch_size * int(ls.max()) ** 2)
        peak["grouped"] = max(peak["grouped"], max(
            grp.numel() * int(ls[grp].max()) ** 2
            for grp in length_groups(ls, ii.MAX_PADDING_WASTE, ii.MAX_SCORE_ELEMENTS)))
        outs = {}
        for name in times:
            xx = x.clone().requires_grad_(True)
            t0 = time.perf_counter()
            if name == "two padded":
                out = two_padded(unit, xx, salient, batch, a.batch_size)
            else:
                out = unit(xx, salient, batch, a.batch_size)
            out.square().mean().backward()
            times[name] += time.perf_counter() - t0
            outs[name] = out.detach()
        max_err = max(max_err, float((outs["two padded"] - outs["grouped"]).abs().max()))
        n_videos += a.batch_size
    load = os.getloadavg()[0]
    print(f"# {source}; {a.batches} batches of {a.batch_size} videos, D = {a.channels}, "
          f"forward + backward; torch threads {a.threads}, load {load:.1f} "
          "(shared machine: compare the ratio)")
    print("| path | videos/s | largest score matrix (elements) |")
    print("|---|---|---|")
    for name in times:
        print(f"| {name} | {n_videos / times[name]:.2f} | {peak[name]:,} |")
    print(f"speed-up {times['two padded'] / times['grouped']:.2f}x; "
          f"largest |difference| of the outputs {max_err:.2e}")


if __name__ == "__main__":
    main()
