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
a video id (or any key) twice in one object   the last one wins           :class:`ValueError`
missing ``database`` / ``results``            crash / ``IOError``         :class:`ValueError`
missing ``version`` / ``external_data``       ``IOError``                 warning
missing ``subset`` / ``annotations`` /        ``KeyError``                :class:`ValueError`
``label`` / ``segment`` / ``score``
non-numeric, NaN or infinite segment/score,   NaN scores ranked first,    :class:`ValueError`
``true`` / ``false`` as a number              NaN tIoU never matches,
                                              ``true`` read as 1.0
inverted segment (start > end)                silently scored             :class:`ValueError`
segment entirely before 0 s (``[-10, -5]``)   silently scored             :class:`ValueError`
result label not in the GT taxonomy           ``KeyError``                :class:`ValueError`
GT segment (partly) outside ``[0, duration]`` silently scored             warning
rare GT label nearly equal to another one     a class of its own          warning (*)
(``"Diving "``, 1 instance vs ``"Diving"``)
results for videos absent from the GT         false positives             false positives
============================================  ==========================  =====================

Warnings are :class:`FormatWarning`, except (*), an :class:`EvaluationInputWarning`.

:func:`save_results` refuses what :func:`load_results` refuses (NaN, infinite, inverted or
negative segments, non-finite scores) before writing anything. The checks that need both files
(videos that do not match, times beyond the durations, ...) are
:func:`tagraph.evaluation.detection_map`'s (``EvaluationInputWarning``).

Every error message names the file (or ``<dict>``), the video and the field at fault.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagraph.io.atomic import atomic_write

__all__ = [
    "FormatWarning",
    "EvaluationInputWarning",
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


class EvaluationInputWarning(UserWarning):
    r"""The ground truth and the predictions are readable but the mAP is probably not what was
    meant: a ground-truth label that looks like a typo of another class (here), and, from
    :func:`tagraph.evaluation.detection_map` (see :mod:`tagraph.evaluation.checks`), prediction
    videos absent from the ground truth, a ``v_`` prefix on one side only, times beyond the
    video durations (frames instead of seconds?), several subsets evaluated together, no
    predictions, ground-truth videos without predictions. Exported by
    :mod:`tagraph.evaluation`."""


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _name(src: Any) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else "<dict>"


# Every key of a JSON text is followed by one ':' (whitespace allowed between them), and
# strings may hold more (URLs): counts of ':' and of this pattern are upper bounds of the keys.
_KEY = re.compile(r'"[ \t\n\r]*:')


def _keys_seen(x: Mapping[str, Any]) -> int:
    """Keys of :obj:`x`, of its object values (recursively) and of the objects in its list
    values (one level); a lower bound of the keys of the parsed JSON, counted at C speed."""
    n = len(x)
    for v in x.values():
        if type(v) is dict:
            n += _keys_seen(v)
        elif type(v) is list and v and type(v[0]) is dict and set(map(type, v)) == {dict}:
            n += sum(map(len, v))
    return n


def _read_json(path: PathLike, container: str | None = None) -> Any:
    r"""Parse a JSON file; a key that occurs twice in one object (JSON keeps the last one
    silently) is an error naming the file and, for ``container`` (``"database"`` or
    ``"results"``), the video. Duplicates are found with ``object_pairs_hook``; that parse is
    slower, so it only runs when the keys in the text may outnumber the keys parsed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: invalid or truncated JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a JSON file") from None
    if type(data) is dict:
        # cheap upper bounds first (a count of ':' costs about 1 ms per 2 MB); the exact parse
        # with object_pairs_hook (slower by a third) only when a key may have been lost
        seen = _keys_seen(data)
        if text.count(":") > seen and len(_KEY.findall(text)) > seen:
            _check_duplicate_keys(path, text, container)
    return data


def _check_duplicate_keys(path: Path, text: str, container: str | None) -> None:
    dups: list[tuple[str, int, dict[str, Any]]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) != len(pairs):
            counts: dict[str, int] = {}
            for k, _ in pairs:
                counts[k] = counts.get(k, 0) + 1
            key = next(k for k, c in counts.items() if c > 1)
            dups.append((key, counts[key], d))
        return d

    data = json.loads(text, object_pairs_hook=hook)
    if not dups:
        return
    # report the outermost duplicate: the hook sees inner objects first
    key, count, d = dups[-1]
    top = data.get(container) if container is not None and isinstance(data, dict) else None
    if d is data:
        raise ValueError(f"{path}: top-level field '{key}' appears {count} times")
    if d is top:
        raise ValueError(
            f"{path}: video '{key}': duplicate video id in '{container}' ({count} entries; "
            "JSON keeps only the last one, so the others would be lost silently)"
        )
    if isinstance(top, dict):
        for vid, v in top.items():
            if v is d:
                raise ValueError(f"{path}: video '{vid}': field '{key}' appears {count} times")
            entries = v.get("annotations") if isinstance(v, dict) else v
            what = "annotations" if isinstance(v, dict) else "results"
            if isinstance(entries, list):
                for i, e in enumerate(entries):
                    if e is d:
                        raise ValueError(
                            f"{path}: video '{vid}' {what}[{i}]: field '{key}' appears "
                            f"{count} times"
                        )
    raise ValueError(f"{path}: key '{key}' appears {count} times in one object")


_JSON_NUMBER = {int, float}


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
    if s < 0 and e <= 0:
        raise ValueError(f"{where}.segment: [{s}, {e}] lies entirely before 0 s (negative times)")
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
        ValueError: Invalid JSON, a video id twice in ``database``, missing fields,
            non-numeric (booleans included), NaN, inverted or entirely negative segments; the
            message names the file, the video and the field. A subset that matches no video is
            also an error (naming the file and listing the subsets present).

    Warns:
        FormatWarning: Ground-truth segments outside ``[0, duration]`` (kept as they are, as
            the official evaluator does).
        EvaluationInputWarning: A class with at most two instances whose name is nearly that
            of another class (a label typo becomes a class of its own), naming both.
    """
    name = _name(src)
    if isinstance(src, (str, os.PathLike)):
        src = _read_json(src, "database")
    if not isinstance(src, Mapping):
        raise ValueError(f"{name}: expected a JSON object, got {type(src).__name__}")
    if "database" not in src and all(isinstance(v, VideoAnnotation) for v in src.values()):
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
        _warn_near_duplicate_labels(videos, name)
    if subset is not None:
        videos = _select_subset(videos, subset, name)
    return videos


def _select_subset(
    videos: Mapping[str, VideoAnnotation], subset: str, name: str
) -> dict[str, VideoAnnotation]:
    """The videos of ``subset`` (case-insensitive); ``name`` (the file) goes into errors."""
    key = subset.lower()
    for vid, ann in videos.items():
        if ann.subset is None:
            raise ValueError(
                f"{name}: video '{vid}': missing field 'subset' (needed to select "
                f"subset '{subset}')"
            )
    selected = {vid: a for vid, a in videos.items() if a.subset.lower() == key}
    if videos and not selected:
        raise ValueError(
            f"{name}: no video in subset '{subset}' (subsets: {_subset_summary(videos)})"
        )
    return selected


def _subset_summary(videos: Mapping[str, VideoAnnotation]) -> str:
    """``'Test' (212 videos), 'Validation' (200 videos)``: the subsets of the videos, sorted."""
    counts: dict[str, int] = {}
    for ann in videos.values():
        counts[str(ann.subset)] = counts.get(str(ann.subset), 0) + 1
    return ", ".join(f"'{k}' ({n} video{'s' if n != 1 else ''})" for k, n in sorted(counts.items()))


#: A class with at most this many instances and a name near another's is probably a typo.
RARE_LABEL_INSTANCES = 2
#: :func:`difflib.SequenceMatcher` ratio above which two lower-cased class names are "near".
NEAR_LABEL_RATIO = 0.9


def _label_key(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch.isalnum())


def _numbered(a: str, b: str) -> bool:
    """``action_03`` / ``action_04``: names that differ in their numbers only."""
    return re.sub(r"\d+", "#", a.lower()) == re.sub(r"\d+", "#", b.lower())


def _near_duplicate_labels(
    counts: Mapping[str, int], rare: int = RARE_LABEL_INSTANCES, ratio: float = NEAR_LABEL_RATIO
) -> list[tuple[str, str]]:
    r"""Pairs ``(rare, other)`` of class names where ``rare`` has at most :obj:`rare` instances
    and ``other`` has more and looks nearly the same: equal up to case, spaces and punctuation,
    or a :class:`difflib.SequenceMatcher` ratio of the lower-cased names of at least
    :obj:`ratio` (a label typo in the ground truth silently creates a new class). Names that
    differ in their numbers only (``action_03`` / ``action_04``) are distinct classes."""
    import difflib

    out = []
    for a, na in counts.items():
        if na > rare:
            continue
        best, best_r = None, ratio
        for b, nb in counts.items():
            if b == a or nb <= na:
                continue
            if _label_key(a) == _label_key(b):
                best, best_r = b, 2.0
                break
            if _numbered(a, b):
                continue
            r = difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()
            if r >= best_r:
                best, best_r = b, r
        if best is not None:
            out.append((a, best))
    return out


def _warn_near_duplicate_labels(videos: Mapping[str, VideoAnnotation], name: str) -> None:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for vid, ann in videos.items():
        for label in ann.labels:
            counts[label] = counts.get(label, 0) + 1
            first.setdefault(label, vid)
    for a, b in _near_duplicate_labels(counts):
        warnings.warn(
            f"{name}: video '{first[a]}': label {a!r} ({counts[a]} instance"
            f"{'s' if counts[a] != 1 else ''}) looks like a typo of {b!r} ({counts[b]} "
            f"instances); it is evaluated as a class of its own",
            EvaluationInputWarning,
            stacklevel=3,
        )


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
        ValueError: Invalid JSON, a video id twice in ``results``, missing fields,
            non-numeric (``true`` / ``false`` included) / NaN / infinite scores or segments,
            inverted or entirely negative segments, unknown labels; the message names the file,
            the video, the entry index and the field.

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
            src = _read_json(src, "results")
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
        labels: list[Any] = []
        scores: list[Any] = []
        segs: list[Any] = []
        for vid, entries in results.items():
            if not isinstance(entries, list):
                raise ValueError(
                    f"{name}: video '{vid}': expected a list of results, got "
                    f"{type(entries).__name__}"
                )
            try:  # fast path; on failure find the culprit
                labels.extend([r["label"] for r in entries])
                scores.extend([r["score"] for r in entries])
                segs.extend([r["segment"] for r in entries])
            except (KeyError, TypeError, IndexError):
                _locate_entry_error(name, vid, entries)
                raise  # pragma: no cover - _locate_entry_error raises
            vids_l.append(str(vid))
            counts.append(len(entries))
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

        def where(row: int, f: str) -> str:
            return _where(name, vids_l, offsets, row, f)

        n = len(labels)
        # Type sets, not dtypes: numpy turns [0.5, true] into [0.5, 1.0] (a boolean is no
        # score); the per-row loops only run to name the culprit (or for numpy scalars).
        if not set(map(type, scores)) <= _JSON_NUMBER:
            for row, sc in enumerate(scores):
                if not _is_number(sc):
                    what = "a boolean is not a number" if isinstance(sc, bool) else "got"
                    raise ValueError(
                        f"{where(row, 'score')}: expected a number, {what} {sc!r}"
                    )
        score_arr = np.asarray(scores, dtype=np.float64) if n else np.empty(0)
        seg_ok = n == 0 or (
            set(map(type, segs)) <= {list, tuple} and set(map(len, segs)) == {2}
        )
        if seg_ok and n:
            flat = list(itertools.chain.from_iterable(segs))
            seg_ok = set(map(type, flat)) <= _JSON_NUMBER
        if seg_ok:
            seg = np.asarray(flat, dtype=np.float64).reshape(n, 2) if n else np.empty((0, 2))
        else:
            seg = np.array(
                [_segment(sg, where(row, "")[:-1]) for row, sg in enumerate(segs)],
                dtype=np.float64,
            ).reshape(n, 2)
        label_arr = np.asarray(labels) if n else np.empty(0, "<U1")
        if label_arr.dtype.kind != "U":
            for row, lab in enumerate(labels):
                if not isinstance(lab, str):
                    raise ValueError(f"{where(row, 'label')}: expected a string, got {lab!r}")
        det = Detections(
            np.repeat(np.asarray(vids_l if vids_l else [], dtype=str), counts),
            label_arr,
            score_arr,
            seg,
        )
    _validate(det, where, taxonomy)
    return det


def _locate_entry_error(name: str, vid: Any, entries: list[Any]) -> None:
    w = f"{name}: video '{vid}'"
    for i, r in enumerate(entries):
        if not isinstance(r, Mapping):
            raise ValueError(f"{w} results[{i}]: expected an object, got {type(r).__name__}")
        for key in ("label", "score", "segment"):
            if key not in r:
                raise ValueError(f"{w} results[{i}]: missing field '{key}'")


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
    bad = (det.segment[:, 0] < 0) & (det.segment[:, 1] <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        s, e = det.segment[row].tolist()
        raise ValueError(
            f"{where(row, 'segment')}: [{s}, {e}] lies entirely before 0 s (negative times)"
        )
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

    Raises:
        ValueError: A NaN or infinite score or segment, an inverted segment (start > end) or
            one entirely before 0 s, which :func:`load_results` would refuse; the message
            names the file, the video, the row and the field, and nothing is written.
    """
    det = detections

    def where(row: int, f: str) -> str:
        return f"{path}: not written: video '{det.video_id[row]}' row {row}: {f}"

    _validate(det, where, None)
    atomic_write(path, json.dumps(detections.to_dict(version, external_data)))
