"""Data-layer timings: SyntheticTAL generation, SSN list parsing (vectorised
vs a line-by-line reference parser), dataset processing.

    PYTHONPATH=. python benchmarks/bench_data.py [--full]

Prints a table; compare ratios measured in the same run (absolute times
depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import groupby
from pathlib import Path

import numpy as np

from tagraph.data import SyntheticTAL, generate_synthetic_tal, read_ssn_proposals
from tagraph.io import load_annotations


def reference_ssn_parser(path: str, fps: dict[str, float]) -> dict[str, np.ndarray]:
    """The classic SSN-style parser: groupby on '#', one split() and float() per line."""
    lines = list(open(path))
    groups = groupby(lines, lambda x: x.startswith("#"))
    out = {}
    for is_head, g in groups:
        if is_head:
            continue
        info = [x.strip() for x in g]
        vid = info[0].split("/")[-1]
        n_gt = int(info[3])
        off = 4 + n_gt
        n_pr = int(info[off])
        rows = [[float(v) for v in x.split()] for x in info[off + 1:off + 1 + n_pr]]
        pr = np.array(rows).reshape(-1, 5)
        out[vid] = pr[:, 3:5] / fps[vid]
    return out


def timeit(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also generate the full size (1.3 GB)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = ["small", "medium"] + (["full"] if args.full else [])
        files = {}
        for size in sizes:
            t = time.perf_counter()
            files[size] = generate_synthetic_tal(Path(tmp) / size, size, seed=0)
            rows.append((f"generate SyntheticTAL '{size}'", time.perf_counter() - t, None))
            t = time.perf_counter()
            generate_synthetic_tal(Path(tmp) / size, size, seed=0)
            rows.append((f"  cached second call '{size}'", time.perf_counter() - t, None))
        f = files["medium"]
        ann = load_annotations(f.annotation_file)
        fps = {v: a.fps for v, a in ann.items()}
        plist = f.proposal_files["Validation"]
        n_props = sum(1 for _ in open(plist))
        fast = timeit(lambda: read_ssn_proposals(plist, fps))
        ref = timeit(lambda: reference_ssn_parser(str(plist), fps))
        a = read_ssn_proposals(plist, fps)
        b = reference_ssn_parser(str(plist), fps)
        assert all(np.allclose(np.minimum(a[v].segments, 1e9), b[v]) for v in b)
        rows.append((f"read_ssn_proposals ({n_props} lines, validated)", fast, ref / fast))
        rows.append(("  line-by-line reference parser", ref, None))
        root = Path(tmp) / "ds"
        generate_synthetic_tal(root / "raw", "medium", seed=0)  # not timed below
        for graph in (None, "snippet", "proposal"):
            t = time.perf_counter()
            ds = SyntheticTAL(root, size="medium", subset="train", graph=graph, log=False)
            build = time.perf_counter() - t
            t = time.perf_counter()
            SyntheticTAL(root, size="medium", subset="train", graph=graph, log=False)
            load = time.perf_counter() - t
            rows.append((f"process {len(ds)} videos, graph={graph}", build, None))
            rows.append(("  load from cache", load, build / load))
    print(f"{'step':<52} {'seconds':>9} {'speed-up':>9}")
    for name, sec, ratio in rows:
        r = f"{ratio:8.1f}x" if ratio is not None else ""
        print(f"{name:<52} {sec:9.3f} {r:>9}")


if __name__ == "__main__":
    main()
