r"""Where a run's data lives: the ``[data]`` keys of a config turned into the
arguments of one :class:`~tagraph.data.TALDataset` (ActivityNet-style JSON +
a folder of per-video features).

Every path and number of the on-disk layout is a config key, settable with
``--set``:

=========================  ===============================================
``data.root``              base folder; relative paths below are looked up
                           under it first, then from the working directory
``data.annotations``       ActivityNet-style annotation JSON
``data.features``          feature folder
``data.feature_pattern``   file name in it, ``{video}`` = the video id,
                           optional ``{stream}`` = ``rgb`` / ``flow``
                           (``""`` = search ``<id>.npy``, ``rgb/<id>.npy`` +
                           ``flow/<id>.npy``, ``<id>_rgb.npy`` + ...)
``data.feature_stride``    frames between snippets
``data.feature_window``    frames per snippet
``data.fps``               frame rate of videos whose JSON entry has none
                           (0 = every entry must have one)
``data.classes``           class list file, one name a line (its order sets the
                           indices, e.g. of SSN proposal labels; ``""`` =
                           the sorted labels of the JSON)
``data.train_subset``      subset names as written in the JSON
``data.test_subset``       (case-insensitive; a preset's aliases such as
                           ``train`` -> ``Validation`` only apply when the
                           name itself matches nothing)
``data.proposals_train``   SSN proposal list or BSN/BMN csv folder (P-GCN)
``data.proposals_test``
``data.clicks``            ``"background"`` (simulated) or a click file or
                           a folder of per-video ``<video_id>.json`` files
=========================  ===============================================

``data.dataset`` picks the defaults of these keys (:data:`DATA_PRESETS`):
``thumos14`` (ActionFormer / OpenTAD layout, stride 4), ``activitynet13``
(``v_<id>.npy``, stride 16, 25 fps) or ``json`` (no defaults: set
``annotations`` and ``features``). An empty string or 0 keeps the preset's
value. ``synthetic`` and ``wtalc_thumos14`` are their own readers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DATA_PRESETS", "DataLayout", "data_layout", "resolve_path", "JSON_DATASETS"]

#: Defaults of the layout keys for each JSON dataset (``data.dataset``).
DATA_PRESETS: dict[str, dict[str, Any]] = {
    "thumos14": {
        "annotations": "annotations/thumos14.json",
        "features": "i3d_features",
        "feature_pattern": "",
        "feature_stride": 4.0,
        "feature_window": 16.0,
        "fps": 0.0,
        "subset_aliases": {"train": "Validation", "val": "Validation", "test": "Test"},
    },
    "activitynet13": {
        "annotations": "annotations/anet1.3_i3d_filtered.json",
        "features": "i3d_features",
        "feature_pattern": "v_{video}.npy",
        "feature_stride": 16.0,
        "feature_window": 16.0,
        "fps": 25.0,
        "subset_aliases": {"train": "training", "val": "validation", "test": "testing"},
    },
    "json": {
        "annotations": "",
        "features": "",
        "feature_pattern": "",
        "feature_stride": 16.0,
        "feature_window": 16.0,
        "fps": 0.0,
        "subset_aliases": {"train": ["training", "validation"], "val": ["validation"],
                           "test": ["testing"]},
    },
}

JSON_DATASETS = tuple(DATA_PRESETS)
LAYOUT_KEYS = ("annotations", "features", "feature_pattern", "feature_stride",
               "feature_window", "fps")


def resolve_path(value: str | os.PathLike, root: Path) -> Path:
    r"""A config path: absolute as is; relative under :obj:`root` when it
    exists there, else from the working directory when it exists there, else
    under :obj:`root` (so that the error names the expected place)."""
    p = Path(os.path.expanduser(str(value)))
    if p.is_absolute():
        return p
    under = root / p
    if under.exists() or not p.exists():
        return under
    return p


@dataclass
class DataLayout:
    r"""The resolved layout of a JSON dataset (see the module docstring)."""

    dataset: str
    root: Path
    annotations: Path
    features: Path
    feature_pattern: str | None
    stride: float
    window: float
    fps: float | None
    subset_aliases: dict[str, Any] = field(default_factory=dict)
    proposals: dict[str, Path | None] = field(default_factory=dict)
    clicks: str | Path | None = None
    classes: Path | None = None

    def dataset_kwargs(self) -> dict[str, Any]:
        r"""Keyword arguments of :class:`~tagraph.data.TALDataset`."""
        return dict(annotation_file=self.annotations, feature_dir=self.features,
                    feature_pattern=self.feature_pattern, stride=self.stride,
                    window=self.window, default_fps=self.fps,
                    subset_aliases=self.subset_aliases, classes=self.classes)


def data_layout(d: Mapping[str, Any]) -> DataLayout:
    r"""Resolves the layout keys of a config's ``[data]`` table over the
    preset of ``data.dataset`` (one of :data:`JSON_DATASETS`).

    Raises:
        ValueError: For an unknown dataset or a missing required key.
    """
    name = d.get("dataset")
    if name not in DATA_PRESETS:
        raise ValueError(f"data.dataset {name!r} is not a JSON dataset "
                         f"({', '.join(JSON_DATASETS)})")
    preset = DATA_PRESETS[name]
    root = Path(os.path.expanduser(str(d.get("root", "") or ".")))

    def get(key: str) -> Any:
        v = d.get(key)
        return preset[key] if v in (None, "", 0, 0.0) else v

    for key in ("annotations", "features"):
        if not get(key):
            raise ValueError(f"data.dataset = '{name}' needs data.{key} (the "
                             f"{'annotation JSON' if key == 'annotations' else 'feature folder'}"
                             "; relative to data.root)")
    stride, window = float(get("feature_stride")), float(get("feature_window"))
    fps = float(get("fps")) or None
    proposals = {k: (resolve_path(d[k], root) if d.get(k) else None)
                 for k in ("proposals_train", "proposals_test")}
    clicks = d.get("clicks") or None
    if clicks is not None and clicks not in ("background", "action", "both"):
        clicks = resolve_path(clicks, root)
    classes = resolve_path(d["classes"], root) if d.get("classes") else None
    return DataLayout(str(name), root, resolve_path(get("annotations"), root),
                      resolve_path(get("features"), root), get("feature_pattern") or None,
                      stride, window, fps, dict(preset["subset_aliases"]), proposals, clicks,
                      classes)
