"""Writes a generated SyntheticTAL set in a THUMOS14-like folder layout of one's choice
(the way a user's own features arrive): annotation JSON with subsets Validation / Test,
features under a file pattern (one joint file, or RGB / Flow halves), SSN proposal lists,
per-video click files ``{"background_clicks": [...]}``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tagraph.data.clicks import read_clicks
from tagraph.data.synthetic import SyntheticFiles, generate_synthetic_tal

TINY = dict(num_train=10, num_test=6, num_classes=4, group_sizes=[2, 1, 1], feature_dim=32,
            duration_median=40.0, duration_max=80.0)


def synthetic(root: Path, stride: int = 16, **extra) -> SyntheticFiles:
    from tagraph.data.synthetic import SYNTHETIC_SIZES

    size = {**SYNTHETIC_SIZES["small"], **TINY, "stride": stride, **extra}
    return generate_synthetic_tal(root, size, seed=0)


def write_layout(files: SyntheticFiles, out: Path, pattern: str = "{video}.npy",
                 features: str = "features", clicks_folder: bool = True) -> Path:
    """Copies :obj:`files` into :obj:`out` under the given feature pattern; returns :obj:`out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    shutil.copy(files.annotation_file, out / "annotations" / "thumos14.json")
    shutil.copy(files.classes_file, out / "classes.txt")
    for src in sorted(files.feature_dir.glob("*.npy")):
        x = np.load(src)
        if "{stream}" in pattern:
            half = x.shape[1] // 2
            for stream, part in (("rgb", x[:, :half]), ("flow", x[:, half:])):
                p = out / features / pattern.format(video=src.stem, stream=stream)
                p.parent.mkdir(parents=True, exist_ok=True)
                np.save(p, part)
        else:
            p = out / features / pattern.format(video=src.stem)
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, x)
    (out / "proposals").mkdir(exist_ok=True)
    for subset, path in files.proposal_files.items():
        shutil.copy(path, out / "proposals" / f"{subset}_proposal_list.txt")
    classes = files.classes_file.read_text().split()
    clicks = read_clicks(files.clicks_file, classes)
    if clicks_folder:
        (out / "clicks").mkdir(exist_ok=True)
        for vid, (times, labels) in clicks.items():
            bg = [float(t) for t, lab in zip(times, labels) if lab == len(classes)]
            (out / "clicks" / f"{vid}.json").write_text(json.dumps({"background_clicks": bg}))
    return out
