"""Shared helpers of the tagraph.data tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def shared_data() -> Path | None:
    """`<repo>/../shared/data`, else `/work/shared/data`, else None."""
    repo = Path(__file__).resolve().parents[2]
    for cand in (repo / ".." / "shared" / "data", Path(os.environ.get(
            "TAGRAPH_SHARED_DATA", "/work/shared/data"))):
        if (cand / "thumos14").is_dir():
            return cand.resolve()
    return None


def make_tiny_dataset(folder: Path, dim: int = 6, fps: float = 10.0, stride: int = 2,
                      window: int = 4) -> dict:
    """Three videos (one without annotations) in layout (a); returns the spec."""
    videos = {
        "vid_a": dict(subset="train", duration=20.0,
                      annotations=[("run", [2.0, 5.0]), ("jump", [10.0, 12.5])]),
        "vid_b": dict(subset="train", duration=15.0, annotations=[("jump", [1.0, 3.0])]),
        "vid_c": dict(subset="train", duration=8.0, annotations=[]),
        "vid_d": dict(subset="test", duration=12.0, annotations=[("run", [0.0, 4.0])]),
    }
    db = {}
    (folder / "features").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for vid, v in videos.items():
        db[vid] = {"subset": v["subset"], "duration": v["duration"], "fps": fps,
                   "annotations": [{"label": lab, "segment": seg}
                                   for lab, seg in v["annotations"]]}
        T = int((v["duration"] * fps - window) // stride) + 1
        np.save(folder / "features" / f"{vid}.npy",
                rng.standard_normal((T, dim)).astype(np.float32))
    (folder / "annotations.json").write_text(json.dumps({"version": "t", "database": db}))
    return dict(videos=videos, dim=dim, fps=fps, stride=stride, window=window)


def tiny_tal_dataset(tmp_path: Path, **kw):
    """A :class:`TALDataset` over :func:`make_tiny_dataset` written to ``tmp_path/raw``
    (cache in ``tmp_path/cache``; subset ``train``, no graph unless given)."""
    from tagraph.data import TALDataset

    kw.setdefault("subset", "train")
    kw.setdefault("graph", None)
    return TALDataset(tmp_path / "cache", tmp_path / "raw" / "annotations.json",
                      tmp_path / "raw" / "features", stride=2, window=4, **kw)
