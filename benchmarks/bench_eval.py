"""Benchmark: fast detection mAP vs the plain-loop reference on THUMOS14-test-sized input.

    PYTHONPATH=$PWD python benchmarks/bench_eval.py [--repeats 7] [--per-video 200]

Uses the real THUMOS14 test ground truth when ``../shared/data/thumos14/thumos14.json`` (or
``/work/shared/data/thumos14/thumos14.json``) exists, else synthetic ground truth with similar
statistics (212 videos, 20 classes, ~16 instances per video). Predictions are generated:
~200 per video, half jittered copies of ground truth, half random, scores rounded to 3 decimals
(so there are ties). Prints median wall times over repeats and their ratio; the two are measured
in the same run, so the ratio holds on a shared machine where absolute times are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tagraph.evaluation import THUMOS14_TIOU, average_recall, detection_map  # noqa: E402
from tagraph.io import Detections, VideoAnnotation, load_annotations  # noqa: E402
from tests.evaluation.reference_impl import reference_detection_map  # noqa: E402


def thumos_gt() -> tuple[dict[str, VideoAnnotation], str]:
    for base in (ROOT / ".." / "shared" / "data", Path("/work/shared/data")):
        path = base / "thumos14" / "thumos14.json"
        if path.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return load_annotations(path, subset="test"), f"real THUMOS14 test GT ({path})"
    rng = np.random.default_rng(0)
    gt = {}
    for v in range(212):
        m = int(rng.integers(1, 40))
        dur = float(rng.uniform(60, 600))
        start = np.sort(rng.uniform(0, dur - 10, m))
        segs = np.stack([start, start + rng.exponential(4.0, m) + 0.5], 1).round(1)
        labels = [f"class{c}" for c in rng.choice(20, size=m, p=None)]
        gt[f"video_test_{v:07d}"] = VideoAnnotation(f"video_test_{v:07d}", "test", dur, 30.0,
                                                    segs, labels)
    return gt, "synthetic GT (212 videos, 20 classes)"


def make_predictions(gt: dict[str, VideoAnnotation], per_video: int, seed: int = 0) -> Detections:
    rng = np.random.default_rng(seed)
    labels = sorted({lab for a in gt.values() for lab in a.labels})
    parts = []
    for vid, ann in gt.items():
        n = per_video
        dur = ann.duration or float(ann.segments.max(initial=60.0))
        n_near = n // 2 if len(ann) else 0
        pick = rng.integers(0, max(len(ann), 1), n_near)
        base = ann.segments[pick] if len(ann) else np.zeros((0, 2))
        length = (base[:, 1] - base[:, 0]).clip(min=0.1)
        near = base + rng.normal(0, 0.3, (n_near, 2)) * length[:, None]
        near_lab = np.asarray(ann.labels, dtype=str)[pick] if len(ann) else np.empty(0, str)
        swap = rng.random(n_near) < 0.2
        near_lab = np.where(swap, rng.choice(labels, n_near), near_lab)
        n_rand = n - n_near
        s = rng.uniform(0, dur, n_rand)
        rand = np.stack([s, s + rng.exponential(5.0, n_rand)], 1)
        seg = np.sort(np.concatenate([near, rand]), axis=1)
        lab = np.concatenate([near_lab, rng.choice(labels, n_rand)])
        score = np.round(rng.random(n), 3)
        parts.append(Detections(np.full(n, vid), lab, score, seg))
    return Detections.concat(parts)


def timeit(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ref-repeats", type=int, default=3)
    parser.add_argument("--per-video", type=int, default=200)
    args = parser.parse_args()

    gt, source = thumos_gt()
    det = make_predictions(gt, args.per_video)
    thr = THUMOS14_TIOU[2:]  # 0.3:0.1:0.7, 5 thresholds
    gt_rows = [(v, lab, s, e) for v, a in gt.items()
               for lab, (s, e) in zip(a.labels, a.segments.tolist())]
    pred_rows = det.to_records()

    fast_t, fast = timeit(lambda: detection_map(gt, det, thr), args.repeats)
    ref_t, (ref_labels, ref_ap) = timeit(
        lambda: reference_detection_map(gt_rows, pred_rows, thr), args.ref_repeats
    )
    assert fast.labels == ref_labels
    max_diff = float(np.abs(fast.ap - ref_ap).max())

    props = Detections(det.video_id, np.full(len(det), "action"), det.score, det.segment)
    ar_t, _ = timeit(lambda: average_recall(gt, props, [50, 100, 200]), args.repeats)

    print(f"input: {source}; {len(gt)} videos, {len(fast.labels)} classes, "
          f"{len(det)} predictions, {len(thr)} thresholds; CPU shared with other jobs")
    rows = [
        ("detection_map (tagraph, vectorised)", f"{fast_t * 1e3:.1f} ms"),
        ("plain-loop reference (official logic)", f"{ref_t * 1e3:.1f} ms"),
        ("speed-up (reference / tagraph)", f"{ref_t / fast_t:.1f}x"),
        ("max |AP difference|", f"{max_diff:.1e}"),
        ("average_recall AR@[50,100,200], 10 tIoU", f"{ar_t * 1e3:.1f} ms"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  ---------")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    print(f"mAP@0.3:0.7 = {[round(float(m), 4) for m in fast.mAP]}, "
          f"avg = {fast.average_mAP:.4f}")


if __name__ == "__main__":
    main()
