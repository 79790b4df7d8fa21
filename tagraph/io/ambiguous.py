r"""Reader for ambiguous-interval lists such as W-TALC's THUMOS14 ``Ambiguous_test.txt``.

One interval per line, ``VIDEO_ID START END`` (seconds), fields separated by any whitespace::

    video_test_0000278  0.0 1.4
    video_test_0000278  95.7 97.2

Blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_ambiguous"]


def load_ambiguous(
    src: str | os.PathLike | Mapping[str, Any],
) -> dict[str, np.ndarray]:
    r"""Read ambiguous intervals per video.

    Args:
        src (str, os.PathLike or dict): Path of the text file, or an already built
            ``{video_id: [[start, end], ...]}`` mapping (validated and converted).

    Returns:
        dict[str, numpy.ndarray]: ``{video_id: [K, 2] float64 (start, end) seconds}``.

    Raises:
        ValueError: A malformed line (naming the file and line number), a non-finite or
            inverted interval.
    """
    out: dict[str, list[tuple[float, float]]] = {}
    if isinstance(src, Mapping):
        for vid, segs in src.items():
            arr = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
            for i, (s, e) in enumerate(arr.tolist()):
                _check(s, e, f"<dict>: video '{vid}' interval {i}")
            out[str(vid)] = arr
        return out  # type: ignore[return-value]
    path = Path(src)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{path}:{lineno}"
            if len(fields) != 3:
                raise ValueError(
                    f"{where}: expected 'VIDEO_ID START END', got {line.rstrip()!r}"
                )
            try:
                s, e = float(fields[1]), float(fields[2])
            except ValueError:
                raise ValueError(
                    f"{where}: video '{fields[0]}': start/end must be numbers, got "
                    f"{fields[1]!r} {fields[2]!r}"
                ) from None
            _check(s, e, f"{where}: video '{fields[0]}'")
            out.setdefault(fields[0], []).append((s, e))
    return {vid: np.asarray(v, dtype=np.float64).reshape(-1, 2) for vid, v in out.items()}


def _check(s: float, e: float, where: str) -> None:
    if not (math.isfinite(s) and math.isfinite(e)):
        raise ValueError(f"{where}: start and end must be finite, got [{s}, {e}]")
    if s > e:
        raise ValueError(f"{where}: start {s} > end {e} (inverted interval)")
