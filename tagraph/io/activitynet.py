r"""Readers and writers for the ActivityNet ground-truth and results JSON formats.

Ground truth (`ActivityNet 1.3 <http://activity-net.org/download.html>`_ annotation file)::

    {"version": "...",
     "database": {"VIDEO_ID": {"subset": "validation", "duration": 123.4, "fps": 30.0,
                               "annotations": [{"label": "Long jump", "segment": [1.5, 9.0]}]}}}

Results (the file the official evaluator and the ActivityNet server read)::

    {"version": "VERSION 1.3",
     "results": {"VIDEO_ID": [{"label": "Long jump", "score": 0.9, "segment": [1.2, 8.7]}]},
     "external_data": {"used": false, "details": ""}}

Times are seconds. Validation policy (the official ``Evaluation/eval_detection.py`` is the
reference; where it crashes we raise a :class:`ValueError`, where it silently computes a
meaningless number we also raise, where the input is odd but well-defined we warn):

============================================  ==========================  =====================
case                                          official evaluator          tagraph
============================================  ==========================  =====================
invalid / truncated JSON                      crash                       :class:`ValueError`
missing ``database`` / ``results``            crash / ``IOError``         :class:`ValueError`
missing ``version`` / ``external_data``       ``IOError``                 warning
missing ``subset`` / ``annotations`` /        ``KeyError``                :class:`ValueError`
``label`` / ``segment`` / ``score``
non-numeric, NaN or infinite segment/score    NaN scores ranked first,    :class:`ValueError`
                                              NaN tIoU never matches
inverted segment (start > end)                silently scored             :class:`ValueError`
result label not in the GT taxonomy           ``KeyError``                :class:`ValueError`
GT segment outside ``[0, duration]``          silently scored             warning
results for videos absent from the GT         false positives             false positives
============================================  ==========================  =====================

Every error message names the file (or ``<dict>``), the video and the field at fault.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagraph.io.atomic import atomic_write

__all__ = [
    "FormatWarning",
    "VideoAnnotation",
    "Detections",
    "load_annotations",
    "save_annotations",
    "load_results",
    "save_results",
]

PathLike = str | os.PathLike


class FormatWarning(UserWarning):
    """An annotation or results file is unusual but can be read (see the module docstring)."""


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _name(src: Any) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else "<dict>"


def _read_json(path: PathLike) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: invalid or truncated JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a JSON file") from None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _segment(seg: Any, where: str) -> tuple[float, float]:
    """Validate one ``[start, end]`` pair; ``where`` locates it in error messages."""
    if not isinstance(seg, (list, tuple, np.ndarray)) or len(seg) != 2:
        raise ValueError(f"{where}.segment: expected [start, end], got {seg!r}")
    s, e = seg[0], seg[1]
    if not (_is_number(s) and _is_number(e)):
        raise ValueError(f"{where}.segment: start and end must be numbers, got {list(seg)!r}")
    s, e = float(s), float(e)
    if not (math.isfinite(s) and math.isfinite(e)):
        raise ValueError(f"{where}.segment: start and end must be finite, got [{s}, {e}]")
    if s > e:
        raise ValueError(f"{where}.segment: start {s} > end {e} (inverted segment)")
    return s, e


def _optional_float(v: Mapping[str, Any], key: str, where: str) -> float | None:
    x = v.get(key)
    if x is None:
        return None
    if not _is_number(x) or not math.isfinite(float(x)) or float(x) < 0:
        raise ValueError(f"{where}.{key}: expected a non-negative number, got {x!r}")
    return float(x)


# ---------------------------------------------------------------------------------------------
# ground truth
# ---------------------------------------------------------------------------------------------


@dataclass
class VideoAnnotation:
    r"""Ground truth of one video.

    Args:
        video_id (str): Video identifier (the key in ``database``).
        subset (str, optional): Split name as written in the file (e.g. ``"Test"``).
        duration (float, optional): Video length in seconds.
        fps (float, optional): Frame rate.
        segments (numpy.ndarray): Action instances, :obj:`[M, 2]` float64 (start, end) seconds.
        labels (list[str]): Class name of each instance, length :obj:`M`.
    """

    video_id: str
    subset: str | None = None
    duration: float | None = None
    fps: float | None = None
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.segments = np.asarray(self.segments, dtype=np.float64).reshape(-1, 2)
        self.labels = [str(label) for label in self.labels]
        if len(self.labels) != len(self.segments):
            raise ValueError(
                f"video '{self.video_id}': {len(self.segments)} segments but "
                f"{len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """The entry of this video in an ActivityNet ``database``."""
        out: dict[str, Any] = {}
        if self.subset is not None:
            out["subset"] = self.subset
        if self.duration is not None:
            out["duration"] = self.duration
        if self.fps is not None:
            out["fps"] = self.fps
        out["annotations"] = [
            {"label": label, "segment": [float(s), float(e)]}
            for label, (s, e) in zip(self.labels, self.segments.tolist())
        ]
        return out


def _parse_video(vid: str, v: Any, where: str) -> VideoAnnotation:
    if not isinstance(v, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(v).__name__}")
    subset = v.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise ValueError(f"{where}.subset: expected a string, got {subset!r}")
    duration = _optional_float(v, "duration", where)
    fps = _optional_float(v, "fps", where)
    if "annotations" not in v:
        raise ValueError(f"{where}: missing field 'annotations'")
    anns = v["annotations"]
    if not isinstance(anns, list):
        raise ValueError(f"{where}.annotations: expected a list, got {type(anns).__name__}")
    segments = np.empty((len(anns), 2), dtype=np.float64)
    labels: list[str] = []
    for i, ann in enumerate(anns):
        w = f"{where}.annotations[{i}]"
        if not isinstance(ann, Mapping):
            raise ValueError(f"{w}: expected an object, got {type(ann).__name__}")
        for key in ("label", "segment"):
            if key not in ann:
                raise ValueError(f"{w}: missing field '{key}'")
        if not isinstance(ann["label"], str):
            raise ValueError(f"{w}.label: expected a string, got {ann['label']!r}")
        segments[i] = _segment(ann["segment"], w)
        labels.append(ann["label"])
    return VideoAnnotation(vid, subset, duration, fps, segments, labels)


def load_annotations(
    src: PathLike | Mapping[str, Any], subset: str | None = None
) -> dict[str, VideoAnnotation]:
    r"""Read an ActivityNet-style ground-truth file (see the module docstring).

    Args:
        src (str, os.PathLike or dict): Path of the JSON file, its parsed content
            (``{"database": ...}``), or an already loaded ``{video_id: VideoAnnotation}``.
        subset (str, optional): Keep only the videos of this subset; names compare
            case-insensitively (THUMOS14 uses ``Validation``/``Test``, ActivityNet
            ``training``/``validation``/``testing``). (default: :obj:`None`, all videos)

    Returns:
        dict[str, VideoAnnotation]: Annotations by video id, in file order.

    Raises:
        ValueError: Invalid JSON, missing fields, non-numeric, NaN or inverted segments; the
            message names the file, the video and the field. A subset that matches no video is
            also an error (listing the subsets present).

    Warns:
        FormatWarning: Ground-truth segments outside ``[0, duration]`` (kept as they are, as
            the official evaluator does).
    """
    name = _name(src)
    if isinstance(src, (str, os.PathLike)):
        src = _read_json(src)
    if not isinstance(src, Mapping):
        raise ValueError(f"{name}: expected a JSON object, got {type(src).__name__}")
    if src and all(isinstance(v, VideoAnnotation) for v in src.values()):
        videos = dict(src)
    else:
        if "database" not in src:
            raise ValueError(f"{name}: missing top-level field 'database'")
        db = src["database"]
        if not isinstance(db, Mapping):
            raise ValueError(f"{name}: 'database' must be an object, got {type(db).__name__}")
        videos = {
            str(vid): _parse_video(str(vid), v, f"{name}: video '{vid}'")
            for vid, v in db.items()
        }
        _warn_outside_duration(videos, name)
    if subset is not None:
        key = subset.lower()
        for vid, ann in videos.items():
            if ann.subset is None:
                raise ValueError(
                    f"{name}: video '{vid}': missing field 'subset' (needed to select "
                    f"subset '{subset}')"
                )
        selected = {vid: a for vid, a in videos.items() if a.subset.lower() == key}
        if videos and not selected:
            present = sorted({a.subset for a in videos.values()})
            raise ValueError(f"{name}: no video in subset '{subset}' (subsets: {present})")
        videos = selected
    return videos


def _warn_outside_duration(videos: Mapping[str, VideoAnnotation], name: str) -> None:
    bad, first = 0, None
    for vid, ann in videos.items():
        if ann.duration is None or len(ann) == 0:
            continue
        # small tolerance: durations are often rounded to 0.01 s
        out = (ann.segments[:, 0] < 0) | (ann.segments[:, 1] > ann.duration + 1e-2)
        n = int(out.sum())
        if n and first is None:
            i = int(np.flatnonzero(out)[0])
            first = (
                f"video '{vid}' annotations[{i}].segment {ann.segments[i].tolist()} "
                f"vs duration {ann.duration}"
            )
        bad += n
    if bad:
        warnings.warn(
            f"{name}: {bad} ground-truth segment(s) outside [0, duration], e.g. {first}; "
            "they are kept (as the official evaluator does)",
            FormatWarning,
            stacklevel=3,
        )


def save_annotations(
    path: PathLike,
    annotations: Mapping[str, VideoAnnotation],
    version: str | None = None,
) -> None:
    r"""Write ground truth as an ActivityNet annotation JSON, atomically.

    Args:
        path (str or os.PathLike): Destination file.
        annotations (dict[str, VideoAnnotation]): Annotations by video id.
        version (str, optional): Value of the ``version`` field. (default: :obj:`None`, omitted)
    """
    out: dict[str, Any] = {}
    if version is not None:
        out["version"] = version
    out["database"] = {vid: ann.to_dict() for vid, ann in annotations.items()}
    atomic_write(path, json.dumps(out))


# ---------------------------------------------------------------------------------------------
# detections
# ---------------------------------------------------------------------------------------------


def _str_array(x: Iterable[Any]) -> np.ndarray:
    arr = np.asarray(list(x) if not isinstance(x, np.ndarray) else x)
    if arr.size == 0:
        return np.empty(0, dtype="<U1")
    return arr.astype(str).reshape(-1)


@dataclass
class Detections:
    r"""A flat table of detections :math:`(v_i, c_i, s_i, [t^s_i, t^e_i])`, one row each.

    Args:
        video_id (numpy.ndarray): Video ids, :obj:`[P]` str.
        label (numpy.ndarray): Class names, :obj:`[P]` str.
        score (numpy.ndarray): Confidences, :obj:`[P]` float64.
        segment (numpy.ndarray): (start, end) in seconds, :obj:`[P, 2]` float64.
    """

    video_id: np.ndarray
    label: np.ndarray
    score: np.ndarray
    segment: np.ndarray

    def __post_init__(self) -> None:
        self.video_id = _str_array(self.video_id)
        self.label = _str_array(self.label)
        self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        self.segment = np.asarray(self.segment, dtype=np.float64).reshape(-1, 2)
        n = {len(self.video_id), len(self.label), len(self.score), len(self.segment)}
        if len(n) != 1:
            raise ValueError(
                "Detections: video_id, label, score and segment must have the same length, got "
                f"{len(self.video_id)}, {len(self.label)}, {len(self.score)}, {len(self.segment)}"
            )

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index: Any) -> Detections:
        """Rows selected by an integer array, a boolean mask or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(
            self.video_id[index], self.label[index], self.score[index], self.segment[index]
        )

    def __repr__(self) -> str:
        n_vid = len(np.unique(self.video_id)) if len(self) else 0
        return f"{self.__class__.__name__}({len(self)} detections, {n_vid} videos)"

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.empty(0, "<U1"), np.empty(0, "<U1"), np.empty(0), np.empty((0, 2)))

    @classmethod
    def from_records(cls, records: Iterable[Sequence[Any]]) -> Detections:
        r"""Build from ``(video_id, label, score, start, end)`` tuples."""
        rows = list(records)
        if not rows:
            return cls.empty()
        vids, labels, scores, starts, ends = zip(*rows)
        return cls(vids, labels, scores, np.stack([starts, ends], axis=1))

    @classmethod
    def concat(cls, items: Iterable[Detections]) -> Detections:
        r"""Concatenate several tables (e.g. one per video or per batch)."""
        items = [d for d in items if len(d)]
        if not items:
            return cls.empty()
        return cls(
            np.concatenate([d.video_id for d in items]),
            np.concatenate([d.label for d in items]),
            np.concatenate([d.score for d in items]),
            np.concatenate([d.segment for d in items]),
        )

    def to_records(self) -> list[tuple[str, str, float, float, float]]:
        r"""The rows as ``(video_id, label, score, start, end)`` tuples."""
        return list(
            zip(
                self.video_id.tolist(),
                self.label.tolist(),
                self.score.tolist(),
                self.segment[:, 0].tolist(),
                self.segment[:, 1].tolist(),
            )
        )

    def to_dict(
        self, version: str = "VERSION 1.3", external_data: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        r"""The ActivityNet results object (videos in first-appearance order)."""
        results: dict[str, list[dict[str, Any]]] = {}
        for vid, label, score, s, e in self.to_records():
            results.setdefault(vid, []).append(
                {"label": label, "score": score, "segment": [s, e]}
            )
        if external_data is None:
            external_data = {"used": False, "details": ""}
        return {"version": version, "results": results, "external_data": dict(external_data)}


def _where(name: str, vids: list[str], offsets: np.ndarray, row: int, field_: str) -> str:
    v = int(np.searchsorted(offsets, row, side="right")) - 1
    return f"{name}: video '{vids[v]}' results[{row - int(offsets[v])}].{field_}"


def load_results(
    src: PathLike | Mapping[str, Any] | Detections,
    taxonomy: Iterable[str] | None = None,
) -> Detections:
    r"""Read an ActivityNet results JSON (see the module docstring) into :class:`Detections`.

    Args:
        src (str, os.PathLike, dict or Detections): Path, parsed content
            (``{"results": ...}``) or detections (then only validated).
        taxonomy (Iterable[str], optional): Allowed labels (usually those of the ground truth);
            a result with another label is an error, as in the official evaluator.
            (default: :obj:`None`, any label)

    Raises:
        ValueError: Invalid JSON, missing fields, non-numeric / NaN / infinite scores or
            segments, inverted segments, unknown labels; the message names the file, the video,
            the entry index and the field.

    Warns:
        FormatWarning: Missing ``version`` or ``external_data`` (the official evaluator rejects
            such a file; the ActivityNet server needs them).
    """
    name = _name(src)
    if isinstance(src, Detections):
        det = src

        def where(row: int, f: str) -> str:
            return f"<Detections>: video '{det.video_id[row]}' row {row}: {f}"
    else:
        if isinstance(src, (str, os.PathLike)):
            src = _read_json(src)
        if not isinstance(src, Mapping):
            raise ValueError(f"{name}: expected a JSON object, got {type(src).__name__}")
        if "results" not in src:
            raise ValueError(f"{name}: missing top-level field 'results'")
        missing = [k for k in ("version", "external_data") if k not in src]
        if missing:
            warnings.warn(
                f"{name}: missing field(s) {missing} (the official evaluator and the "
                "ActivityNet server reject such a file)",
                FormatWarning,
                stacklevel=2,
            )
        results = src["results"]
        if not isinstance(results, Mapping):
            raise ValueError(f"{name}: 'results' must be an object, got {type(results).__name__}")
        vids_l, counts = [], []
        labels, scores, segs = [], [], []
        for vid, entries in results.items():
            w = f"{name}: video '{vid}'"
            if not isinstance(entries, list):
                raise ValueError(f"{w}: expected a list of results, got {type(entries).__name__}")
            for i, r in enumerate(entries):
                try:
                    labels.append(r["label"])
                    scores.append(r["score"])
                    segs.append(r["segment"])
                except (KeyError, TypeError):
                    if not isinstance(r, Mapping):
                        raise ValueError(
                            f"{w} results[{i}]: expected an object, got {type(r).__name__}"
                        ) from None
                    key = next(k for k in ("label", "score", "segment") if k not in r)
                    raise ValueError(f"{w} results[{i}]: missing field '{key}'") from None
            vids_l.append(str(vid))
            counts.append(len(entries))
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

        def where(row: int, f: str) -> str:
            return _where(name, vids_l, offsets, row, f)

        # Fast path: numpy conversion; on failure locate the first bad entry.
        n = len(labels)
        for row, s in enumerate(scores):
            if not _is_number(s):
                raise ValueError(f"{where(row, 'score')}: expected a number, got {s!r}")
        try:
            seg = np.asarray(segs)
            ok = seg.shape == (n, 2) and seg.dtype.kind in "fiu"
        except (ValueError, TypeError):  # ragged
            ok = False
        if not ok:
            for row, sg in enumerate(segs):
                _segment(sg, where(row, "")[:-1])
        seg = seg.astype(np.float64) if n else np.empty((0, 2))
        for row, lab in enumerate(labels):
            if not isinstance(lab, str):
                raise ValueError(f"{where(row, 'label')}: expected a string, got {lab!r}")
        det = Detections(
            np.repeat(np.asarray(vids_l if vids_l else [], dtype=str), counts),
            np.asarray(labels, dtype=str) if n else np.empty(0, "<U1"),
            np.asarray(scores, dtype=np.float64),
            seg,
        )
    _validate(det, where, taxonomy)
    return det


def _validate(det: Detections, where: Any, taxonomy: Iterable[str] | None) -> None:
    bad = ~np.isfinite(det.score)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where(row, 'score')}: must be finite, got {det.score[row]}")
    bad = ~np.isfinite(det.segment).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where(row, 'segment')}: start and end must be finite, got "
            f"{det.segment[row].tolist()}"
        )
    bad = det.segment[:, 0] > det.segment[:, 1]
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        s, e = det.segment[row].tolist()
        raise ValueError(f"{where(row, 'segment')}: start {s} > end {e} (inverted segment)")
    if taxonomy is not None and len(det):
        tax = np.asarray(sorted(set(taxonomy)), dtype=str)
        known = np.isin(det.label, tax)
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            shown = ", ".join(repr(t) for t in tax[:5].tolist())
            more = ", ..." if len(tax) > 5 else ""
            raise ValueError(
                f"{where(row, 'label')}: label {str(det.label[row])!r} is not in the ground-truth "
                f"taxonomy ({len(tax)} classes: {shown}{more})"
            )


def save_results(
    path: PathLike,
    detections: Detections,
    version: str = "VERSION 1.3",
    external_data: Mapping[str, Any] | None = None,
) -> None:
    r"""Write detections as an ActivityNet results JSON, atomically.

    Args:
        path (str or os.PathLike): Destination file.
        detections (Detections): The detections.
        version (str, optional): ``version`` field. (default: :obj:`"VERSION 1.3"`)
        external_data (dict, optional): ``external_data`` field.
            (default: :obj:`{"used": False, "details": ""}`)
    """
    atomic_write(path, json.dumps(detections.to_dict(version, external_data)))
