r"""Snippet features on disk: per-video files, modality selection and
fixed-length resampling.

Accepted layouts of a feature folder :obj:`root` (searched in this order for
each video; :obj:`.npy` before :obj:`.pt`):

1. :obj:`root/<video_id>.npy` (or :obj:`.pt`): one array :obj:`[T, D]` with
   RGB and Flow concatenated along :obj:`D`, RGB first (ActionFormer / OpenTAD
   THUMOS14 and ActivityNet I3D features, :class:`SyntheticTAL`);
2. :obj:`root/rgb/<video_id>.npy` and :obj:`root/flow/<video_id>.npy`: one
   array per stream, concatenated as :obj:`[rgb, flow]` when both are used;
3. :obj:`root/<video_id>_rgb.npy` and :obj:`root/<video_id>_flow.npy`:
   the same with suffixes.

A :obj:`pattern` (e.g. :obj:`"v_{video}.npy"`, :obj:`"{video}_{stream}.npy"`,
:obj:`"{stream}/{video}.npy"`) names the files instead of the search above:
:obj:`{video}` is the video id, :obj:`{stream}` (for one file per stream)
:obj:`rgb` or :obj:`flow`.

A :obj:`.pt` file holds a tensor (or a dict with a single tensor value).
Modality :obj:`"rgb"` keeps the first half of a concatenated array (or reads
only the RGB file), :obj:`"flow"` the second half, :obj:`"both"` everything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from tagraph.data.video import check_features

__all__ = [
    "FeatureFolder",
    "MODALITIES",
    "read_feature_file",
    "select_modality",
    "resample_snippets",
    "file_signature",
    "check_feature_pattern",
]

Modality = Literal["rgb", "flow", "both"]
MODALITIES = ("rgb", "flow", "both")
_EXTS = (".npy", ".pt")


def _check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    return modality


def file_signature(path: str | os.PathLike) -> tuple[str, int, int, int, int]:
    """:obj:`(path, size, mtime_ns, ctime_ns, inode)` of a file: what a cache key records.

    Size and mtime alone can be forged: a file rewritten with the same size and its
    old mtime restored (``touch -r``, :func:`os.utime`, ``cp -p``, ``rsync -t``, a
    ``git checkout`` of an older version within the same second) kept the old key, and a
    stale cache was used silently. The change time cannot be set from user space (every
    write, :func:`os.utime` and rename of the file sets it to now), and a file replaced
    by another one (``mv``, an atomic save) has a new inode. Costs one :func:`os.stat`, like
    before; a copied or restored data set (new inodes) rebuilds its cache once.
    """
    st = os.stat(path)
    return (str(path), int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns),
            int(st.st_ino))


def read_feature_file(path: str | os.PathLike, video_id: str | None = None) -> Tensor:
    """Reads one :obj:`.npy` / :obj:`.pt` feature file into a float32 tensor.

    Raises :class:`FileNotFoundError` / :class:`ValueError` naming the file and
    the video when the file is missing, unreadable or not a numeric 2-D array
    free of NaN/Inf (e.g. an array of strings, or a pickled object array).
    """
    path = Path(path)
    where = f"{path}: video '{video_id}'" if video_id is not None else str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: feature file not found")
    try:
        if path.suffix == ".pt":
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                tensors = [v for v in obj.values() if isinstance(v, Tensor)]
                if len(tensors) != 1:
                    raise ValueError(f"dict with {len(tensors)} tensors, expected one")
                obj = tensors[0]
        else:
            obj = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the file and video
        raise ValueError(f"{where}: cannot read features ({type(e).__name__}: {e})") from e
    return check_features(obj, where)


def select_modality(x: Tensor, modality: str, where: str = "features") -> Tensor:
    """Keeps the RGB (first) half, the Flow (second) half, or both."""
    _check_modality(modality)
    if modality == "both":
        return x
    d = x.size(-1)
    if d % 2:
        raise ValueError(f"{where}: cannot split odd dimension {d} into RGB and Flow halves")
    return x[..., : d // 2] if modality == "rgb" else x[..., d // 2:]


class FeatureFolder:
    r"""Per-video feature files in a folder (layouts 1-3 of
    :mod:`tagraph.data.features`).

    Args:
        root (str or Path): The folder.
        modality (str, optional): :obj:`"rgb"`, :obj:`"flow"` or :obj:`"both"`.
            (default: :obj:`"both"`)
        prefix (str, optional): Prepended to the video id in file names (the
            ActionFormer ActivityNet features are :obj:`v_<id>.npy`).
            (default: :obj:`""`)
        pattern (str, optional): File name relative to :obj:`root` with
            :obj:`{video}` and optionally :obj:`{stream}` (:obj:`rgb` /
            :obj:`flow`, one file per stream), e.g. :obj:`"v_{video}.npy"` or
            :obj:`"{stream}/{video}.npy"`. (default: :obj:`None`: search the
            layouts of :mod:`tagraph.data.features`)
    """

    def __init__(self, root: str | os.PathLike, modality: Modality = "both",
                 prefix: str = "", pattern: str | None = None) -> None:
        self.root = Path(root)
        self.modality = _check_modality(modality)
        self.prefix = prefix
        self.pattern = check_feature_pattern(pattern) if pattern else None

    def files(self, video_id: str) -> tuple[str, list[Path]]:
        """:obj:`(layout, paths)` for a video; :obj:`layout` is :obj:`"joint"`
        (one concatenated array) or :obj:`"split"` (:obj:`[rgb, flow]` files)."""
        if self.pattern is not None:
            return self._pattern_files(video_id)
        name = self.prefix + video_id
        for ext in _EXTS:
            p = self.root / f"{name}{ext}"
            if p.is_file():
                return "joint", [p]
        for rgb_name, flow_name in (
            ("rgb/{}{}", "flow/{}{}"),
            ("{}_rgb{}", "{}_flow{}"),
        ):
            for ext in _EXTS:
                rgb = self.root / rgb_name.format(name, ext)
                flow = self.root / flow_name.format(name, ext)
                if rgb.is_file() or flow.is_file():
                    need = {"rgb": [rgb], "flow": [flow], "both": [rgb, flow]}[self.modality]
                    for p in need:
                        if not p.is_file():
                            raise FileNotFoundError(
                                f"{p}: video '{video_id}': feature file not found "
                                f"(modality '{self.modality}')"
                            )
                    return "split", need
        raise FileNotFoundError(
            f"{self.root}: video '{video_id}': no feature file "
            f"(looked for {name}.npy/.pt, rgb/{name}.npy + flow/{name}.npy, "
            f"{name}_rgb.npy + {name}_flow.npy)"
        )

    def _pattern_files(self, video_id: str) -> tuple[str, list[Path]]:
        pattern = str(self.pattern)
        if "{stream}" not in pattern:
            p = self.root / pattern.format(video=self.prefix + video_id)
            if not p.is_file():
                raise FileNotFoundError(f"{p}: video '{video_id}': feature file not found "
                                        f"(data.feature_pattern '{pattern}')")
            return "joint", [p]
        streams = {"rgb": ["rgb"], "flow": ["flow"], "both": ["rgb", "flow"]}[self.modality]
        paths = [self.root / pattern.format(video=self.prefix + video_id, stream=s)
                 for s in streams]
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"{p}: video '{video_id}': feature file not found "
                                        f"(data.feature_pattern '{pattern}', modality "
                                        f"'{self.modality}')")
        return "split", paths

    def signature(self, video_ids: Iterable[str]) -> str:
        """Hash of every feature file's :func:`file_signature` (for cache keys)."""
        h = hashlib.sha256()
        for vid in video_ids:
            for p in self.files(vid)[1]:
                h.update(repr(file_signature(p)).encode())
        return h.hexdigest()

    def load(self, video_id: str) -> Tensor:
        """Loads the features of one video (float32 :obj:`[T, D]`), checked."""
        layout, paths = self.files(video_id)
        if layout == "joint":
            return select_modality(read_feature_file(paths[0], video_id), self.modality,
                                   f"{paths[0]}: video '{video_id}'")
        parts = [read_feature_file(p, video_id) for p in paths]
        if len(parts) == 2:
            if parts[0].size(0) != parts[1].size(0):
                raise ValueError(
                    f"{paths[0]}, {paths[1]}: video '{video_id}': field 'features': "
                    f"RGB has {parts[0].size(0)} snippets but Flow {parts[1].size(0)}"
                )
            return torch.cat(parts, dim=1)
        return parts[0]

    def loader(self, video_id: str):
        """A zero-argument callable that loads :obj:`video_id` (for :class:`Video`)."""
        return lambda: self.load(video_id)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({str(self.root)!r}, modality={self.modality!r}, "
                f"prefix={self.prefix!r}, pattern={self.pattern!r})")


def check_feature_pattern(pattern: str) -> str:
    r"""Returns :obj:`pattern` if it is a valid feature file pattern (it names
    :obj:`{video}`, and no field other than :obj:`{video}` / :obj:`{stream}`),
    else raises :class:`ValueError`."""
    import string

    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as e:
        raise ValueError(f"feature pattern {pattern!r} is not a valid format string: {e}"
                         ) from None
    if "video" not in fields:
        raise ValueError(f"feature pattern {pattern!r} must contain '{{video}}', e.g. "
                         "'{video}.npy', 'v_{video}.npy' or '{stream}/{video}.npy'")
    bad = sorted(fields - {"video", "stream"})
    if bad:
        raise ValueError(f"feature pattern {pattern!r}: unknown field(s) {bad}; use "
                         "'{video}' and optionally '{stream}' (rgb / flow)")
    return pattern


def resample_snippets(
    x: Tensor,
    times: Tensor,
    num: int,
    mode: Literal["interpolate", "uniform"] = "uniform",
) -> tuple[Tensor, Tensor]:
    r"""Resamples a video's snippets to a fixed length, with their times.

    * :obj:`"interpolate"`: always exactly :obj:`num` snippets, linearly
      interpolated in time (up- or down-sampling), as BMN / G-TAD / ActionFormer
      resize ActivityNet features to :math:`T = 100` (or 192).
    * :obj:`"uniform"`: only when :math:`T >` :obj:`num`, keep :obj:`num`
      evenly spaced original snippets (no blending), as weakly-supervised codes
      cap THUMOS14 at :math:`T = 750`; shorter videos are unchanged.

    Random cropping / jittered sampling is a training-time augmentation and
    does not belong in a cached dataset (see the dataset docs).

    Args:
        x (torch.Tensor): Features :obj:`[T, D]`.
        times (torch.Tensor): Snippet centre times :obj:`[T]` (s).
        num (int): Target length.
        mode (str, optional): :obj:`"interpolate"` or :obj:`"uniform"`.

    Returns:
        (torch.Tensor, torch.Tensor): Resampled features and times.
    """
    if num < 1:
        raise ValueError(f"'num' must be >= 1, got {num}")
    t = x.size(0)
    if mode == "uniform":
        if t <= num:
            return x, times
        idx = torch.linspace(0, t - 1, num, dtype=torch.float64).round().long()
        return x.index_select(0, idx), times.index_select(0, idx)
    if mode != "interpolate":
        raise ValueError(f"mode must be 'interpolate' or 'uniform', got {mode!r}")
    if t == 0:
        raise ValueError("cannot interpolate a video without snippets")
    if t == 1:
        return x.expand(num, -1).clone(), times.expand(num).clone()
    pos = torch.linspace(0, t - 1, num, dtype=torch.float64)
    lo = pos.floor().long().clamp(max=t - 2)
    w = (pos - lo.to(torch.float64))
    xi = x.index_select(0, lo) * (1 - w).to(x.dtype)[:, None] + \
        x.index_select(0, lo + 1) * w.to(x.dtype)[:, None]
    tt = times.to(torch.float64)
    ti = tt.index_select(0, lo) * (1 - w) + tt.index_select(0, lo + 1) * w
    return xi, ti.to(times.dtype)
