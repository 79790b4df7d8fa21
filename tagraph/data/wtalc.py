r"""The W-TALC release of THUMOS14 (Paul et al., ECCV 2018), used by most
weakly-supervised localization codes (W-TALC, BaS-Net, ACM-Net, CO2-Net, ...).

Files::

    Thumos14reduced-I3D-JOINTFeatures.npy   pickled object array, entry i = [T_i, 2048]
                                            (RGB = first 1024), aligned with videoname.npy
    Thumos14reduced-Annotations/
        classlist.npy      [C] bytes class names
        videoname.npy      [V] bytes video ids
        subset.npy         [V] b'validation' | b'test'
        duration.npy       [V, 1] seconds
        labels.npy         [V] lists of bytes class names, one per instance
        segments.npy       [V] lists of [start, end] seconds, aligned with labels
        Ambiguous_test.txt "video_id start end" lines (seconds)

One feature snippet is 16 frames at 25 fps: its centre is at
:math:`(16 t + 8) / 25` s (stride 16, window 16, fps 25 in :class:`Video`
terms). :obj:`extracted_fps.npy` / :obj:`original_fps.npy` are not used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tagraph.data.dataset import TALDataset, read_classes
from tagraph.data.features import file_signature, select_modality
from tagraph.data.video import Video, check_features
from tagraph.io import VideoAnnotation

__all__ = ["WTALC_FPS", "WTALC_STRIDE", "WTALCAnnotations", "load_wtalc_annotations",
           "load_wtalc_features", "WTALCThumos14"]

WTALC_FPS = 25.0
WTALC_STRIDE = 16.0

_FILES = ("classlist.npy", "videoname.npy", "subset.npy", "duration.npy", "labels.npy",
          "segments.npy")


def _str(x: Any) -> str:
    return x.decode("utf-8") if isinstance(x, (bytes, np.bytes_)) else str(x)


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: W-TALC annotation file not found")
    try:
        return np.load(path, allow_pickle=True, encoding="bytes")
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e})") from e


@dataclass
class WTALCAnnotations:
    """The W-TALC annotation folder, decoded.

    Attributes:
        classes (list[str]): Class names (the order of :obj:`classlist.npy`).
        video_ids (list[str]): Video ids in file order (the feature index).
        videos (dict[str, VideoAnnotation]): Annotations by video id
            (:obj:`subset` :obj:`"validation"` / :obj:`"test"`, :obj:`fps` 25).
        ambiguous (dict[str, numpy.ndarray]): Ambiguous segments :obj:`[A, 2]`
            (s) by video id (test videos listed in :obj:`Ambiguous_test.txt`).
        folder (Path): The folder.
    """

    classes: list[str]
    video_ids: list[str]
    videos: dict[str, VideoAnnotation]
    ambiguous: dict[str, np.ndarray]
    folder: Path


def load_wtalc_annotations(folder: str | os.PathLike) -> WTALCAnnotations:
    """Reads and validates a :obj:`Thumos14reduced-Annotations` folder.

    Raises :class:`ValueError` naming the file, the video and the field for
    misaligned arrays, labels missing from the class list, inverted or
    non-finite segments.
    """
    folder = Path(folder)
    arr = {f: _load(folder / f) for f in _FILES}
    classes = [_str(c) for c in arr["classlist.npy"].reshape(-1)]
    vids = [_str(v) for v in arr["videoname.npy"].reshape(-1)]
    n = len(vids)
    for f in _FILES[2:]:
        if len(arr[f]) != n:
            raise ValueError(f"{folder / f}: {len(arr[f])} entries but videoname.npy has {n}")
    index = set(classes)
    videos = {}
    for i, vid in enumerate(vids):
        subset = _str(arr["subset.npy"][i])
        duration = float(np.asarray(arr["duration.npy"][i]).reshape(-1)[0])
        labels = [_str(x) for x in list(arr["labels.npy"][i])]
        raw = list(arr["segments.npy"][i])
        if len(raw) != len(labels):
            raise ValueError(f"{folder / 'segments.npy'}: video '{vid}': {len(raw)} segments "
                             f"but labels.npy has {len(labels)} labels")
        seg = np.asarray(raw, dtype=np.float64).reshape(-1, 2)
        for j, lab in enumerate(labels):
            if lab not in index:
                raise ValueError(f"{folder / 'labels.npy'}: video '{vid}': field "
                                 f"'labels[{j}]' {lab!r} is not in classlist.npy")
        bad = np.flatnonzero(~np.isfinite(seg).all(1) | (seg[:, 0] > seg[:, 1]))
        if len(bad):
            raise ValueError(f"{folder / 'segments.npy'}: video '{vid}': field "
                             f"'segments[{bad[0]}]' {seg[bad[0]].tolist()} is inverted or "
                             "not finite")
        if not (np.isfinite(duration) and duration > 0):
            raise ValueError(f"{folder / 'duration.npy'}: video '{vid}': field 'duration' "
                             f"must be > 0, got {duration}")
        videos[vid] = VideoAnnotation(vid, subset, duration, WTALC_FPS, seg, labels)
    ambiguous: dict[str, list] = {}
    amb = folder / "Ambiguous_test.txt"
    if amb.is_file():
        for k, line in enumerate(amb.read_text(encoding="utf-8").splitlines()):
            parts = line.split()
            if not parts:
                continue
            try:
                s, e = float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                raise ValueError(f"{amb}:{k + 1}: expected 'video_id start end', got "
                                 f"{line!r}") from None
            ambiguous.setdefault(parts[0], []).append((s, e))
    return WTALCAnnotations(classes, vids, videos,
                            {k: np.asarray(v, dtype=np.float64) for k, v in ambiguous.items()},
                            folder)


def load_wtalc_features(path: str | os.PathLike, num_videos: int | None = None) -> np.ndarray:
    """Loads :obj:`Thumos14reduced-I3D-JOINTFeatures.npy` (object array of
    :obj:`[T_i, D]` arrays); checks the entry count when :obj:`num_videos` is
    given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: W-TALC feature file not found")
    try:
        feats = np.load(path, allow_pickle=True, encoding="bytes")
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot read features ({type(e).__name__}: {e})") from e
    if num_videos is not None and len(feats) != num_videos:
        raise ValueError(f"{path}: {len(feats)} feature entries but videoname.npy lists "
                         f"{num_videos} videos")
    return feats


class _FeatureStore:
    """Loads the single W-TALC feature file once, on first use."""

    def __init__(self, path: Path, num_videos: int) -> None:
        self.path, self.num_videos = path, num_videos
        self._feats: np.ndarray | None = None

    def get(self, i: int, video_id: str, modality: str) -> Tensor:
        if self._feats is None:
            self._feats = load_wtalc_features(self.path, self.num_videos)
        where = f"{self.path}: video '{video_id}' (entry {i})"
        x = check_features(np.asarray(self._feats[i]), where)
        return select_modality(x, modality, where)

    def release(self) -> None:
        self._feats = None


class WTALCThumos14(TALDataset):
    r"""THUMOS14 in the W-TALC release (Paul et al., ECCV 2018): one pickled
    feature file plus the :obj:`Thumos14reduced-Annotations` folder (format in
    :mod:`tagraph.data.wtalc`). Subsets :obj:`"validation"` (training, alias
    :obj:`"train"`) and :obj:`"test"`. Graphs are those of
    :class:`TALDataset`, with :obj:`ambiguous_segments` :obj:`[A, 2]` (s)
    added (empty outside :obj:`Ambiguous_test.txt`). Weakly-supervised
    methods usually train with :obj:`max_snippets=750` (uniform).

    Args:
        root (str or Path): Folder holding both (and the processed cache).
        subset (str, optional): (default: :obj:`"validation"`)
        feature_file (str or Path, optional): (default:
            :obj:`root/Thumos14reduced-I3D-JOINTFeatures.npy`)
        annotation_dir (str or Path, optional): (default:
            :obj:`root/Thumos14reduced-Annotations`)
        **kwargs (optional): Further :class:`TALDataset` arguments.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        subset: str = "validation",
        feature_file: str | os.PathLike | None = None,
        annotation_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        root = Path(root)
        self.feature_file = Path(feature_file or root / "Thumos14reduced-I3D-JOINTFeatures.npy")
        annotation_dir = Path(annotation_dir or root / "Thumos14reduced-Annotations")
        subset = {"train": "validation", "val": "validation"}.get(subset.lower(), subset.lower())
        for k in ("stride", "window", "annotation_file", "feature_dir", "default_fps"):
            if k in kwargs:
                raise TypeError(f"WTALCThumos14 does not take '{k}'")
        super().__init__(root, annotation_file=annotation_dir, feature_dir=self.feature_file,
                         subset=subset, stride=WTALC_STRIDE, window=16.0, **kwargs)

    def _read_videos(self) -> tuple[list[str], list[Video], dict[str, Any]]:
        ann = load_wtalc_annotations(self.annotation_file)
        self.ambiguous = ann.ambiguous
        classes = (list(ann.classes) if self._classes_arg is None
                   else read_classes(self._classes_arg))
        index = {c: i for i, c in enumerate(classes)}
        store = _FeatureStore(self.feature_file, len(ann.video_ids))
        self._store = store
        if not self.feature_file.is_file():
            raise FileNotFoundError(f"{self.feature_file}: W-TALC feature file not found")
        videos, clipped = [], []
        for i, vid in enumerate(ann.video_ids):
            a = ann.videos[vid]
            if self.subset is not None and a.subset.lower() != self.subset.lower():
                continue
            where = f"{self.annotation_file}: video '{vid}'"
            missing = [lab for lab in a.labels if lab not in index]
            if missing:
                raise ValueError(f"{where}: field 'label': {missing[0]!r} is not in the class "
                                 "list")
            lab = np.array([index[x] for x in a.labels], dtype=np.int64)
            seg, lab = self._check_segments(a.segments, lab, a.duration, where, clipped)
            videos.append(Video(vid, a.duration, WTALC_FPS, WTALC_STRIDE, 16.0, seg, lab,
                                classes, a.subset, source=self.feature_file,
                                loader=(lambda i=i, vid=vid:
                                        store.get(i, vid, self.modality))))
        if not videos:
            raise ValueError(f"{self.annotation_file}: no video in subset '{self.subset}'")
        self._warn_clipped(self.annotation_file, clipped)
        sources = {"annotations": [list(file_signature(self.annotation_file / f))
                                   for f in (*_FILES, "Ambiguous_test.txt")
                                   if (self.annotation_file / f).is_file()],
                   "features": list(file_signature(self.feature_file))}
        return classes, videos, sources

    def process(self) -> None:
        try:
            super().process()
        finally:
            self._store.release()

    def build(self, video: Video, proposals: Any = None, clicks: Any = None):
        data = super().build(video, proposals, clicks)
        amb = self.ambiguous.get(video.video_id, np.zeros((0, 2)))
        data.ambiguous_segments = torch.from_numpy(np.asarray(amb, dtype=np.float32)
                                                   ).reshape(-1, 2)
        return data

