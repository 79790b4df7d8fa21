"""Write the small example files used by the README's first command.

    python examples/make_example_data.py

creates ``examples/data/example_gt.json`` (ActivityNet-style ground truth: 8 videos, 3 classes,
``test`` and ``validation`` subsets) and ``examples/data/example_results.json`` (detections of
an imaginary model: jittered ground truth with wrong labels now and then, plus false alarms).
The output is deterministic. Then:

    tagraph evaluate --gt examples/data/example_gt.json \\
        --pred examples/data/example_results.json --subset test --tiou 0.3 0.5 0.7
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tagraph.io import Detections, VideoAnnotation, save_annotations, save_results

CLASSES = ["HighJump", "LongJump", "PoleVault"]
OUT = Path(__file__).resolve().parent / "data"


def main(out: Path = OUT) -> None:
    rng = np.random.default_rng(2014)
    gt: dict[str, VideoAnnotation] = {}
    for i in range(8):
        vid = f"video_{i:03d}"
        subset = "test" if i < 6 else "validation"
        duration = float(rng.integers(60, 180))
        n = int(rng.integers(1, 5))
        starts = np.sort(rng.uniform(0, duration - 12, n))
        segs = np.stack([starts, starts + rng.uniform(2, 10, n)], 1).round(1)
        keep = np.concatenate([[True], segs[1:, 0] > segs[:-1, 1]])  # no overlapping actions
        label = CLASSES[i % 3]
        gt[vid] = VideoAnnotation(vid, subset, duration, 30.0, segs[keep],
                                  [label] * int(keep.sum()))
    rows = []
    for vid, ann in gt.items():
        for (s, e), label in zip(ann.segments.tolist(), ann.labels):
            for _ in range(2):  # two guesses per instance
                d = (e - s) * rng.normal(0, 0.15, 2)
                lab = label if rng.random() > 0.15 else CLASSES[rng.integers(3)]
                rows.append((vid, lab, round(float(rng.uniform(0.3, 1.0)), 3),
                             round(max(0.0, s + d[0]), 2), round(e + d[1], 2)))
        for _ in range(3):  # false alarms
            s = float(rng.uniform(0, ann.duration - 5))
            rows.append((vid, CLASSES[rng.integers(3)], round(float(rng.uniform(0, 0.6)), 3),
                         round(s, 2), round(s + float(rng.uniform(1, 8)), 2)))
    out.mkdir(parents=True, exist_ok=True)
    save_annotations(out / "example_gt.json", gt, version="tagraph example 1.0")
    save_results(out / "example_results.json", Detections.from_records(rows))
    print(f"wrote {out / 'example_gt.json'} and {out / 'example_results.json'}")


if __name__ == "__main__":
    main()
