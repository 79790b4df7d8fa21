r"""Point annotations ("clicks"): simulation, files, and snippet indices.

Click file format (JSON, written atomically)::

    {"video_test_0000004": [{"time": 3.2, "label": "background"},
                            {"time": 11.8, "label": "CricketBowling"}],
     ...}

:obj:`time` is in seconds, :obj:`label` a class name or :obj:`"background"`.
A video may have an empty list. A video's clicks may also be written as
:obj:`{"background_clicks": [3.2, ...], "action_clicks": [{"time": 11.8,
"label": "CricketBowling"}]}`, and a folder of such per-video files
:obj:`<video_id>.json` replaces the single file (see :func:`read_clicks`).
In memory, clicks are :obj:`(times [K] float64, labels [K] int64)` with
class indices and :obj:`num_classes` for background; on graphs they become
snippet indices :obj:`clicks` and :obj:`click_labels` (see :func:`clicks_to_snippets`).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tagraph.io import atomic_write

__all__ = [
    "BACKGROUND",
    "merge_segments",
    "background_gaps",
    "simulate_background_clicks",
    "simulate_action_clicks",
    "simulate_clicks",
    "read_clicks",
    "write_clicks",
    "clicks_to_snippets",
    "video_rng",
]

BACKGROUND = "background"


def video_rng(seed: int, video_id: str) -> np.random.Generator:
    """A generator that depends only on :obj:`seed` and :obj:`video_id` (not on
    the order in which videos are visited)."""
    return np.random.default_rng([int(seed), zlib.crc32(video_id.encode("utf-8"))])


def merge_segments(segments: np.ndarray) -> np.ndarray:
    """Union of possibly overlapping segments as sorted disjoint :obj:`[G, 2]`."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    if len(seg) == 0:
        return seg
    seg = seg[np.argsort(seg[:, 0], kind="stable")]
    run_end = np.maximum.accumulate(seg[:, 1])
    new = np.ones(len(seg), dtype=bool)
    new[1:] = seg[1:, 0] > run_end[:-1]
    first = np.flatnonzero(new)
    last = np.r_[first[1:], len(seg)] - 1
    return np.stack([seg[first, 0], run_end[last]], axis=1)


def background_gaps(segments: np.ndarray, duration: float) -> np.ndarray:
    """Background intervals :obj:`[B, 2]` of a video: before the first action,
    between consecutive (merged) actions and after the last one; empty
    intervals are dropped."""
    merged = np.clip(merge_segments(segments), 0.0, duration)
    bounds = np.concatenate([[0.0], merged.reshape(-1), [duration]]).reshape(-1, 2)
    return bounds[bounds[:, 1] > bounds[:, 0]]


def simulate_background_clicks(
    segments: np.ndarray, duration: float, rng: np.random.Generator
) -> np.ndarray:
    r"""BackTAL background clicks (Yang et al., TPAMI 2022): one uniformly
    random time in every background gap (see :func:`background_gaps`).

    Returns:
        numpy.ndarray: Sorted click times :obj:`[B]` (s).
    """
    gaps = background_gaps(segments, duration)
    u = rng.random(len(gaps))
    return gaps[:, 0] + u * (gaps[:, 1] - gaps[:, 0])


def simulate_action_clicks(
    segments: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""SF-Net action clicks (Ma et al., ECCV 2020): one uniformly random time
    inside every action instance.

    Returns:
        (numpy.ndarray, numpy.ndarray): Click times :obj:`[M]` and labels :obj:`[M]`.
    """
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    u = rng.random(len(seg))
    return seg[:, 0] + u * (seg[:, 1] - seg[:, 0]), np.asarray(labels, dtype=np.int64)


def simulate_clicks(
    segments: np.ndarray,
    labels: np.ndarray,
    duration: float,
    num_classes: int,
    rng: np.random.Generator,
    kinds: Sequence[str] = ("background",),
) -> tuple[np.ndarray, np.ndarray]:
    """Background and/or action clicks of one video, sorted by time.

    Args:
        segments (numpy.ndarray): Ground truth :obj:`[M, 2]` (s).
        labels (numpy.ndarray): Class index of each segment :obj:`[M]`.
        duration (float): Video duration (s).
        num_classes (int): :math:`C`; background clicks get label :math:`C`.
        rng (numpy.random.Generator): Randomness (see :func:`video_rng`).
        kinds (Sequence[str], optional): Any of :obj:`"background"`,
            :obj:`"action"`. (default: :obj:`("background",)`)

    Returns:
        (numpy.ndarray, numpy.ndarray): Times :obj:`[K]` and labels :obj:`[K]`.
    """
    unknown = set(kinds) - {"background", "action"}
    if unknown:
        raise ValueError(f"unknown click kinds {sorted(unknown)}")
    times, labs = [np.zeros(0)], [np.zeros(0, dtype=np.int64)]
    if "background" in kinds:
        t = simulate_background_clicks(segments, duration, rng)
        times.append(t)
        labs.append(np.full(len(t), num_classes, dtype=np.int64))
    if "action" in kinds:
        t, lab = simulate_action_clicks(segments, labels, rng)
        times.append(t)
        labs.append(lab)
    t, lab = np.concatenate(times), np.concatenate(labs)
    order = np.argsort(t, kind="stable")
    return t[order], lab[order]


def clicks_to_snippets(times: np.ndarray, snippet_times: np.ndarray) -> np.ndarray:
    """Index of the snippet whose centre time is nearest to each click (ties to
    the earlier snippet); works for resampled (non-uniform) snippet times."""
    pos = np.asarray(snippet_times, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if len(pos) == 0:
        raise ValueError("cannot place clicks on a video without snippets")
    right = np.clip(np.searchsorted(pos, t, side="left"), 0, len(pos) - 1)
    left = np.clip(right - 1, 0, len(pos) - 1)
    take_left = np.abs(t - pos[left]) <= np.abs(pos[right] - t)
    return np.where(take_left, left, right).astype(np.int64)


def _parse_clicks(items: Any, where: str, index: Mapping[str, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One video's clicks: a list of :obj:`{"time", "label"}`, or a per-video
    object with :obj:`"background_clicks"` (times) and / or
    :obj:`"action_clicks"` (a list of :obj:`{"time", "label"}`)."""
    if isinstance(items, Mapping) and (set(items) & {"background_clicks", "action_clicks"}):
        unknown = sorted(set(items) - {"background_clicks", "action_clicks", "video",
                                       "video_id"})
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; expected "
                             "'background_clicks' and / or 'action_clicks'")
        bg = items.get("background_clicks", [])
        if not isinstance(bg, list):
            raise ValueError(f"{where}: field 'background_clicks': expected a list of "
                             f"times (s), got {type(bg).__name__}")
        flat = [{"time": t, "label": BACKGROUND} for t in bg]
        act = items.get("action_clicks", [])
        if not isinstance(act, list):
            raise ValueError(f"{where}: field 'action_clicks': expected a list of "
                             f"{{'time', 'label'}}, got {type(act).__name__}")
        for i, t in enumerate(bg):
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise ValueError(f"{where}: field 'background_clicks[{i}]': expected a finite "
                                 f"number of seconds, got {t!r}")
        items = flat + list(act)
    if not isinstance(items, list):
        raise ValueError(f"{where}: expected a list of clicks, got {type(items).__name__}")
    times = np.empty(len(items), dtype=np.float64)
    labels = np.empty(len(items), dtype=np.int64)
    for i, c in enumerate(items):
        w = f"{where}: clicks[{i}]"
        if not isinstance(c, Mapping) or "time" not in c or "label" not in c:
            raise ValueError(f"{w}: expected {{'time': seconds, 'label': name}}, got {c!r}")
        t = c["time"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ValueError(f"{w}.time: expected a finite number, got {t!r}")
        if c["label"] not in index:
            raise ValueError(f"{w}.label: {c['label']!r} is not in the class list "
                             f"nor '{BACKGROUND}'")
        times[i], labels[i] = t, index[c["label"]]
    order = np.argsort(times, kind="stable")
    return times[order], labels[order]


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid or truncated JSON ({e.msg} at line {e.lineno})"
                         ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 JSON file") from None


def read_clicks(
    path: str | os.PathLike, classes: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads clicks: one click file (format in the module docstring), or a
    folder of per-video files :obj:`<video_id>.json`, each
    :obj:`{"background_clicks": [seconds, ...], "action_clicks": [{"time",
    "label"}, ...]}` (either key may be missing) or a list of
    :obj:`{"time", "label"}`.

    Args:
        path (str or Path): The JSON file or the folder.
        classes (Sequence[str]): Class names; :obj:`"background"` maps to
            :obj:`len(classes)`.

    Returns:
        dict[str, (numpy.ndarray, numpy.ndarray)]: Times and labels by video.
    """
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)}
    index[BACKGROUND] = len(classes)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"{path}: click folder has no <video_id>.json file")
        return {f.stem: _parse_clicks(_read_json(f, "click file"), f"{f}: video '{f.stem}'",
                                      index) for f in files}
    obj = _read_json(path, "click file")
    if isinstance(obj, Mapping) and "clicks" in obj and isinstance(obj["clicks"], Mapping):
        obj = obj["clicks"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected an object {{video_id: [clicks]}}")
    return {str(vid): _parse_clicks(items, f"{path}: video '{vid}'", index)
            for vid, items in obj.items()}


def write_clicks(
    path: str | os.PathLike,
    clicks: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
) -> None:
    """Writes clicks (by video: times, labels with :obj:`len(classes)` =
    background) to a JSON click file, atomically."""
    names = list(classes) + [BACKGROUND]
    out = {}
    for vid, (times, labels) in clicks.items():
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() > len(classes)):
            raise ValueError(f"video '{vid}': click labels outside [0, {len(classes)}]")
        out[vid] = [{"time": float(t), "label": names[int(lab)]}
                    for t, lab in zip(np.asarray(times).tolist(), labels.tolist())]
    atomic_write(path, json.dumps(out, indent=1))
