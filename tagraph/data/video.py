"""The :class:`Video` record: one untrimmed video, its annotations and its features."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["Video", "snippet_times", "num_snippets_for"]


def snippet_times(num_snippets: int, stride: float, window: float, fps: float) -> np.ndarray:
    r"""Centre times (s) of :obj:`num_snippets` snippets.

    .. math::
        \tau_t = \frac{t \cdot \mathrm{stride} + \mathrm{window} / 2}{\mathrm{fps}}

    Args:
        num_snippets (int): Number of snippets :math:`T`.
        stride (float): Frames between the starts of consecutive snippets.
        window (float): Frames each snippet's extractor saw.
        fps (float): Frame rate of the frames that :obj:`stride` and
            :obj:`window` count.

    Returns:
        numpy.ndarray: float64 array of shape :obj:`[T]`.
    """
    if fps <= 0 or stride <= 0 or window < 0:
        raise ValueError(f"need fps > 0, stride > 0, window >= 0 (got {fps}, {stride}, {window})")
    return (np.arange(num_snippets, dtype=np.float64) * stride + window / 2.0) / fps


def num_snippets_for(duration: float, fps: float, stride: float, window: float) -> int:
    r"""Number of full snippets a feature extractor produces for a video:
    :math:`\max(1, \lfloor (\mathrm{duration} \cdot \mathrm{fps} - \mathrm{window}) /
    \mathrm{stride} \rfloor + 1)`."""
    frames = duration * fps
    return max(1, int(np.floor((frames - window) / stride + 1e-9)) + 1)


@dataclass
class Video:
    r"""One untrimmed video: bookkeeping, ground truth, clicks and (lazily
    loaded) snippet features.

    Snippet :math:`t` covers frames :math:`[t \cdot \mathrm{stride},
    t \cdot \mathrm{stride} + \mathrm{window})`; its centre time is
    :math:`(t \cdot \mathrm{stride} + \mathrm{window} / 2) / \mathrm{fps}`
    (see :func:`snippet_times`).

    Args:
        video_id (str): Video identifier (file stem of its features).
        duration (float): Duration in seconds.
        fps (float): Frame rate that :obj:`stride` and :obj:`window` count in.
        stride (float, optional): Feature stride in frames. (default: :obj:`4`)
        window (float, optional): Frames per snippet. (default: :obj:`16`)
        segments (numpy.ndarray, optional): Ground-truth segments in seconds,
            shape :obj:`[M, 2]`. (default: empty)
        labels (numpy.ndarray, optional): Class index (0-based) of each segment,
            shape :obj:`[M]`. (default: empty)
        classes (Sequence[str], optional): Class names; :obj:`labels` index it.
        subset (str, optional): Subset the video belongs to.
        clicks (numpy.ndarray, optional): Click times in seconds, shape :obj:`[K]`.
        click_labels (numpy.ndarray, optional): Class index of each click,
            :obj:`len(classes)` for background, shape :obj:`[K]`.
        loader (Callable[[], torch.Tensor], optional): Returns the snippet
            features :obj:`[T, D]` (checked by :meth:`load_features`).
        source (str, optional): Where the features come from (for messages).
    """

    video_id: str
    duration: float
    fps: float
    stride: float = 4.0
    window: float = 16.0
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    classes: Sequence[str] = ()
    subset: str | None = None
    clicks: np.ndarray | None = None
    click_labels: np.ndarray | None = None
    loader: Callable[[], Tensor] | None = field(default=None, repr=False)
    source: str | Path | None = None

    def __post_init__(self) -> None:
        self.segments = np.asarray(self.segments, dtype=np.float64).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.classes = tuple(self.classes)
        where = f"video '{self.video_id}'"
        if self.source is not None:
            where = f"{self.source}: {where}"
        if not (np.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"{where}: field 'duration' must be > 0, got {self.duration}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"{where}: field 'fps' must be > 0, got {self.fps}")
        if len(self.segments) != len(self.labels):
            raise ValueError(
                f"{where}: {len(self.segments)} segments but {len(self.labels)} labels"
            )
        if len(self.labels) and self.classes and (
            self.labels.min() < 0 or self.labels.max() >= len(self.classes)
        ):
            raise ValueError(f"{where}: field 'labels' outside [0, {len(self.classes)})")
        if self.clicks is not None:
            self.clicks = np.asarray(self.clicks, dtype=np.float64).reshape(-1)
            cl = self.click_labels
            if cl is None:
                raise ValueError(f"{where}: 'clicks' given without 'click_labels'")
            self.click_labels = np.asarray(cl, dtype=np.int64).reshape(-1)
            if self.click_labels.shape != self.clicks.shape:
                raise ValueError(f"{where}: 'clicks' and 'click_labels' differ in length")

    @property
    def label_names(self) -> list[str]:
        """Class name of every ground-truth segment."""
        return [self.classes[i] for i in self.labels.tolist()]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def expected_num_snippets(self) -> int:
        """Snippets an extractor with this stride / window yields for the duration."""
        return num_snippets_for(self.duration, self.fps, self.stride, self.window)

    def snippet_times(self, num_snippets: int | None = None) -> np.ndarray:
        """Centre times (s) of the first :obj:`num_snippets` snippets."""
        if num_snippets is None:
            num_snippets = self.expected_num_snippets()
        return snippet_times(num_snippets, self.stride, self.window, self.fps)

    def seconds_to_snippet(self, seconds: np.ndarray | float) -> np.ndarray:
        """Index of the snippet whose centre is nearest to each time (unclipped)."""
        t = np.asarray(seconds, dtype=np.float64) * self.fps - self.window / 2.0
        return np.rint(t / self.stride).astype(np.int64)

    def load_features(self, expected_dim: int | None = None, length_tolerance: float = 2.0
                      ) -> Tensor:
        r"""Loads and checks the features (float32 :obj:`[T, D]`).

        Raises :class:`ValueError` naming the source, the video and the field
        when the array is not 2-D, holds NaN/Inf, has the wrong dimension, or
        ends more than :obj:`length_tolerance` seconds (plus one snippet)
        before the last annotated segment.
        """
        if self.loader is None:
            raise ValueError(f"video '{self.video_id}' has no feature loader")
        x = self.loader()
        where = f"{self.source}: video '{self.video_id}'" if self.source else \
            f"video '{self.video_id}'"
        x = check_features(x, where, expected_dim)
        if len(self.segments) and x.size(0) > 0 and length_tolerance is not None:
            covered = ((x.size(0) - 1) * self.stride + self.window) / self.fps
            last = float(self.segments[:, 1].max())
            slack = length_tolerance + self.stride / self.fps
            if last > covered + slack:
                raise ValueError(
                    f"{where}: field 'features' has {x.size(0)} snippets covering "
                    f"{covered:.2f}s, shorter than the annotations imply (a segment ends "
                    f"at {last:.2f}s; stride={self.stride}, window={self.window}, "
                    f"fps={self.fps}; is data.feature_stride right?)"
                )
        return x


_KINDS = {"U": "strings", "S": "byte strings", "V": "raw bytes / records", "b": "booleans",
          "c": "complex numbers", "M": "dates", "m": "time deltas", "f": "float128"}


def check_features(x: Tensor | np.ndarray, where: str, expected_dim: int | None = None
                   ) -> Tensor:
    """Converts :obj:`x` to a float32 tensor and checks shape and finiteness."""
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise ValueError(f"{where}: field 'features' is an object array, not numeric")
        if x.dtype.kind not in "fiu" or x.dtype.itemsize > 8:
            # strings ('U', 'S'), bytes ('V'), bools, complex, dates, float128: not features
            raise ValueError(f"{where}: field 'features' has dtype {x.dtype} "
                             f"({_KINDS.get(x.dtype.kind, 'not numeric')}), expected a float "
                             "array")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise ValueError(f"{where}: field 'features' is a {type(x).__name__}, not an array")
    if x.dim() != 2:
        raise ValueError(f"{where}: field 'features' must be [T, D], got shape {list(x.shape)}")
    if not (x.dtype.is_floating_point or x.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{where}: field 'features' has dtype {x.dtype}")
    x = x.to(torch.float32)
    if expected_dim is not None and x.size(1) != expected_dim:
        raise ValueError(
            f"{where}: field 'features' has dimension {x.size(1)}, expected {expected_dim}"
        )
    if not bool(torch.isfinite(x).all()):
        t = int((~torch.isfinite(x)).any(dim=1).nonzero()[0, 0])
        raise ValueError(
            f"{where}: field 'features' holds NaN/Inf (first at snippet {t} of {x.size(0)})"
        )
    return x
