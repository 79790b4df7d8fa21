"""TemporalConv on a snippet graph against conv1d on a padded batch.

Every weakly supervised model's temporal layers are :class:`~tagraph.nn.TemporalConv`
message passing on the snippet graph's temporal edges (``tagraph.nn.temporal_conv``).
On those edges the layer equals :func:`torch.nn.functional.conv1d` (kernel 3, zero
padding) applied to each video; this script checks that on every size and times one
forward + backward pass of both, side by side in one process:

* ``graph``: :class:`~tagraph.nn.TemporalConv` on the packed snippets ``[N, D]`` with
  the edges of :func:`~tagraph.nn.temporal_edges` (what the models run);
* ``conv1d``: the videos padded to ``[B, D, T_max]`` (:func:`torch_geometric.utils.to_dense_batch`),
  :func:`~torch.nn.functional.conv1d` with the same weights, and back to ``[N, D]``.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_temporal_conv.py --threads 1

Prints one row per size: median milliseconds of ``--reps`` repetitions (the two
paths alternate), the ratio graph / conv1d and the largest output difference.
Report the machine's load beside the figures (shared CPUs are noisy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch_geometric.utils import to_dense_batch  # noqa: E402

from tagraph.nn.temporal_conv import TemporalConv, temporal_edges  # noqa: E402

# (name, videos, mean snippets per video, channels in, channels out)
SIZES = [
    ("table: 16 x ~110, 512", 16, 110, 512, 512),
    ("THUMOS: 16 x ~420, 512", 16, 420, 512, 512),
    ("THUMOS: 16 x ~420, 2048", 16, 420, 2048, 2048),
    ("ANet: 64 x 100, 2048 -> 512", 64, 100, 2048, 512),
]


def _lengths(videos: int, mean: int, gen: torch.Generator) -> torch.Tensor:
    # lengths spread +-50 % around the mean, as variable-length videos are
    return torch.randint(mean // 2, mean * 3 // 2 + 1, (videos,), generator=gen)


def _conv1d_path(conv: TemporalConv, x: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    # kernel position j = offset j - 1: [W_-1, W_0, W_+1] as a conv1d weight [out, in, 3]
    w = torch.stack([conv.kernel_weight(-1), conv.kernel_weight(0), conv.kernel_weight(1)], -1)
    dense, mask = to_dense_batch(x, batch)  # [B, T_max, D]
    y = F.conv1d(dense.transpose(1, 2), w.transpose(0, 1), conv.bias, padding=1)
    return y.transpose(1, 2)[mask]


def _time(fn, x: torch.Tensor) -> float:
    t0 = time.perf_counter()
    y = fn()
    y.sum().backward()
    x.grad = None
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, threads {args.threads}, load {load:.1f}, "
          f"median of {args.reps} forward + backward passes\n")
    print("| size | snippets N | graph (ms) | conv1d (ms) | graph / conv1d | max abs diff |")
    print("|---|---|---|---|---|---|")
    for name, videos, mean, cin, cout in SIZES:
        lengths = _lengths(videos, mean, gen)
        ptr = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
        batch = torch.repeat_interleave(torch.arange(videos), lengths)
        ei, et = temporal_edges(ptr, (-1, 1))
        n = int(ptr[-1])
        torch.manual_seed(args.seed)
        conv = TemporalConv(cin, cout, (-1, 1))
        x = torch.rand(n, cin, generator=gen, requires_grad=True)
        with torch.no_grad():
            diff = (conv(x, ei, et) - _conv1d_path(conv, x, batch)).abs().max().item()

        graph = partial(conv, x, ei, et)
        dense = partial(_conv1d_path, conv, x, batch)
        for _ in range(2):  # warm-up
            _time(graph, x)
            _time(dense, x)
        tg, td = [], []
        for _ in range(args.reps):
            tg.append(_time(graph, x))
            td.append(_time(dense, x))
        mg, md = statistics.median(tg), statistics.median(td)
        print(f"| {name} | {n:,} | {1e3 * mg:.1f} | {1e3 * md:.1f} | {mg / md:.2f}x | "
              f"{diff:.1e} |")


if __name__ == "__main__":
    main()
