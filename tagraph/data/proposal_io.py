r"""Proposal files: the SSN / TAG proposal list that P-GCN ships, and BSN / BMN
per-video CSV files. Readers validate; writers are atomic.

**SSN list** (Zhao et al., ICCV 2017; P-GCN's
:obj:`thumos14_tag_{val,test}_proposal_list.txt`), one block per video::

    # 0
    video_validation_0000051        <- video id (a path: its last component)
    5091                            <- frame count
    1                               <- multiplier: frames = count * multiplier
    2                               <- number of ground-truth instances
    12 1834 1932                    <- label start_frame end_frame  (label 1-based)
    12 2134 2250
    3                               <- number of proposals
    12 0.8516 0.9634 1820 1934      <- label best_iou overlap_self start end
    0 0 0 10 300                    <- label 0 = background
    12 0.3100 1.0000 2150 2190

Frames are converted to seconds with the video's fps (``seconds = frame /
fps``). **BSN / BMN CSV**: one :obj:`<video_id>.csv` per video with a header
that contains at least :obj:`xmin`, :obj:`xmax` and :obj:`score` (BSN writes
:obj:`xmin,xmax,xmin_score,xmax_score,score`, BMN
:obj:`xmin,xmax,clr_score,reg_socre,score`); :obj:`xmin` / :obj:`xmax` are
fractions of the video duration in :math:`[0, 1]`.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tagraph.io import atomic_write
from tagraph.ops import segment_iou, segment_overlap

__all__ = [
    "ProposalList",
    "read_ssn_proposals",
    "write_ssn_proposals",
    "read_bsn_csv",
    "write_bsn_csv",
    "read_bsn_folder",
]


@dataclass
class ProposalList:
    r"""Proposals and ground truth of one video, in seconds.

    Args:
        video_id (str): Video identifier.
        num_frames (int): Frames in the video.
        fps (float): Frame rate used to convert frames to seconds.
        gt_segments (numpy.ndarray): Ground truth :obj:`[M, 2]` (s).
        gt_labels (numpy.ndarray): 0-based class of each GT :obj:`[M]`.
        segments (numpy.ndarray): Proposals :obj:`[N, 2]` (s).
        labels (numpy.ndarray): Class of the best-matching GT of each proposal,
            **1-based, 0 = background** (as :obj:`y` of a proposal graph) :obj:`[N]`.
        best_iou (numpy.ndarray): Best tIoU with the GT :obj:`[N]`.
        overlap_self (numpy.ndarray): Best fraction of the proposal covered by
            one GT :obj:`[N]`.
    """

    video_id: str
    num_frames: int
    fps: float
    gt_segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    gt_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    best_iou: np.ndarray = field(default_factory=lambda: np.zeros(0))
    overlap_self: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.gt_segments = np.asarray(self.gt_segments, dtype=np.float64).reshape(-1, 2)
        self.gt_labels = np.asarray(self.gt_labels, dtype=np.int64).reshape(-1)
        self.segments = np.asarray(self.segments, dtype=np.float64).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.best_iou = np.asarray(self.best_iou, dtype=np.float64).reshape(-1)
        self.overlap_self = np.asarray(self.overlap_self, dtype=np.float64).reshape(-1)
        n = len(self.segments)
        if not (len(self.labels) == len(self.best_iou) == len(self.overlap_self) == n):
            raise ValueError(f"video '{self.video_id}': proposal fields differ in length")
        if len(self.gt_labels) != len(self.gt_segments):
            raise ValueError(f"video '{self.video_id}': gt_segments and gt_labels differ")

    def __len__(self) -> int:
        return len(self.segments)

    @classmethod
    def from_segments(
        cls,
        video_id: str,
        segments: np.ndarray,
        gt_segments: np.ndarray,
        gt_labels: np.ndarray,
        fps: float,
        num_frames: int,
    ) -> ProposalList:
        """Builds a list from proposal segments, computing :obj:`labels`,
        :obj:`best_iou` and :obj:`overlap_self` against the ground truth (label of
        the best-tIoU GT, or of the best-overlap GT where no GT intersects by
        tIoU; 0 where the proposal touches no GT)."""
        seg = torch.as_tensor(np.asarray(segments, dtype=np.float64).reshape(-1, 2))
        gt = torch.as_tensor(np.asarray(gt_segments, dtype=np.float64).reshape(-1, 2))
        gl = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
        n = seg.size(0)
        if n and gt.size(0):
            iou = segment_iou(seg, gt)
            ov = segment_overlap(seg, gt)
            best_iou, i_iou = iou.max(dim=1)
            best_ov, i_ov = ov.max(dim=1)
            best_iou, best_ov = best_iou.numpy(), best_ov.numpy()
            lab = np.where(best_iou > 0, gl[i_iou.numpy()], gl[i_ov.numpy()]) + 1
            lab = np.where((best_iou > 0) | (best_ov > 0), lab, 0)
        else:
            best_iou, best_ov, lab = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
        return cls(video_id, num_frames, fps, gt.numpy(), gl, seg.numpy(), lab, best_iou,
                   best_ov)


def _fps_of(fps: float | Mapping[str, float], vid: str, where: str) -> float:
    if isinstance(fps, Mapping):
        if vid not in fps:
            raise ValueError(f"{where}: no fps given for this video")
        fps = fps[vid]
    fps = float(fps)
    if not fps > 0:
        raise ValueError(f"{where}: fps must be > 0, got {fps}")
    return fps


def read_ssn_proposals(
    path: str | os.PathLike,
    fps: float | Mapping[str, float],
    num_classes: int | None = None,
    tolerance: float = 0.02,
    keep: Container[str] | None = None,
) -> dict[str, ProposalList]:
    r"""Reads an SSN / TAG proposal list (format in the module docstring).

    Args:
        path (str or Path): The list file.
        fps (float or Mapping[str, float]): Frame rate (one for all videos, or
            per video id) to convert frames to seconds.
        num_classes (int, optional): When given, labels must lie in
            :math:`[0, C]` (0 = background). (default: :obj:`None`)
        tolerance (float, optional): Relative slack by which a proposal may end
            after the last frame (it is clipped); beyond it, or starting before
            frame 0, or inverted, or of zero length, is an error naming the line.
            Ground truth past the last frame is clipped to it (and dropped when
            nothing is left), with one warning per file giving the count and
            the first example, as the JSON annotation reader does (the
            THUMOS14 lists hold 30 such segments). (default: :obj:`0.02`)
        keep (Container[str], optional): Only return these videos (the
            others are still checked for structure). (default: all)

    Returns:
        dict[str, ProposalList]: Lists by video id, in file order. A video
        with zero proposals (or zero GT) is valid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: proposal list not found") from None
    lines = text.splitlines()
    out: dict[str, ProposalList] = {}
    seen: set[str] = set()
    i, n_lines = 0, len(lines)

    def skip_blank(i: int) -> int:
        while i < n_lines and not lines[i].strip():
            i += 1
        return i

    def take(i: int, what: str, vid: str) -> str:
        if i >= n_lines:
            raise ValueError(f"{path}: video '{vid}': file ends where {what} was expected "
                             "(truncated list)")
        return lines[i].strip()

    def count(i: int, what: str, vid: str) -> int:
        s = take(i, what, vid)
        try:
            v = int(float(s))
        except ValueError:
            raise ValueError(f"{path}:{i + 1}: video '{vid}': field '{what}': expected a count, "
                             f"got {s!r}") from None
        if v < 0:
            raise ValueError(f"{path}:{i + 1}: video '{vid}': field '{what}' is negative")
        return v

    def rows(i: int, n: int, ncol: int, what: str, vid: str) -> np.ndarray:
        # Where the announced rows stop: a block header, a blank line or the end of the file.
        k = next((k for k, line in enumerate(lines[i:i + n])
                  if not line.strip() or line.lstrip().startswith("#")), None)
        if k is None and i + n > n_lines:
            k = n_lines - i
        if k is not None:
            rest = lines[i + k:]
            if all(not line.strip() for line in rest):
                raise ValueError(f"{path}: video '{vid}': expected {n} {what} lines, file ends "
                                 f"at line {i + k} (truncated list, or the count on line {i} "
                                 "is too high)")
            raise ValueError(f"{path}: video '{vid}': expected {n} {what} lines, the block "
                             f"ends at line {i + k} (line {i + k + 1} is "
                             f"{lines[i + k].strip()!r}; is the count on line {i} too high?)")
        if n == 0:
            return np.zeros((0, ncol))
        block = lines[i:i + n]
        try:
            arr = np.array(" ".join(block).split(), dtype=np.float64)
        except ValueError:
            raise ValueError(f"{path}:{i + 1}-{i + n}: video '{vid}': field '{what}': "
                             "non-numeric value") from None
        if arr.size != n * ncol:
            widths = [len(s.split()) for s in block]
            bad = next(k for k, w in enumerate(widths) if w != ncol)
            hint = f" (is the count on line {i} too high?)" if widths[bad] == 1 else ""
            raise ValueError(f"{path}:{i + bad + 1}: video '{vid}': field '{what}': expected "
                             f"{ncol} numbers per line, got {widths[bad]}{hint}")
        return arr.reshape(n, ncol)

    n_clipped, first_clipped = 0, ""
    n_zero, first_zero = 0, ""
    i = skip_blank(i)
    while i < n_lines:
        head = lines[i].strip()
        if not head.startswith("#"):
            raise ValueError(f"{path}:{i + 1}: expected a block header '# idx', got {head!r}")
        vid = Path(take(i + 1, "video id", "?").rstrip("/")).name
        if not vid:
            raise ValueError(f"{path}:{i + 2}: empty video id")
        where = f"{path}: video '{vid}'"
        if vid in seen:
            raise ValueError(f"{where}: listed twice")
        seen.add(vid)
        frames = count(i + 2, "frame count", vid)
        try:
            mult = float(take(i + 3, "multiplier", vid))
        except ValueError:
            raise ValueError(f"{path}:{i + 4}: video '{vid}': field 'multiplier' is not a "
                             "number") from None
        num_frames = int(frames * mult)
        n_gt = count(i + 4, "number of ground truth", vid)
        i_gt = i + 5
        gt = rows(i_gt, n_gt, 3, "ground truth", vid)
        j = i + 5 + n_gt
        n_pr = count(j, "number of proposals", vid)
        pr = rows(j + 1, n_pr, 5, "proposals", vid)
        i = skip_blank(j + 1 + n_pr)
        if keep is not None and vid not in keep:
            continue
        f = _fps_of(fps, vid, where)
        limit = num_frames * (1 + tolerance) + 1
        gt_line, pr_line = i_gt + 1, j + 2  # 1-based line of the first row
        for name, seg, line0 in (("ground truth", gt[:, 1:3], gt_line),
                                 ("proposals", pr[:, 3:5], pr_line)):
            if len(seg) == 0:
                continue
            bad = np.flatnonzero(seg[:, 0] > seg[:, 1])
            if len(bad):
                raise ValueError(f"{path}:{line0 + bad[0]}: video '{vid}': field '{name}'"
                                 f"[{bad[0]}]: inverted segment {seg[bad[0]].tolist()} (frames)")
            if name == "ground truth":
                continue  # outside the video: clipped below, as the JSON reader does
            bad = np.flatnonzero(seg[:, 0] == seg[:, 1])
            if len(bad):  # kept (tIoU 0 with everything), as SSN lists rounded to frames have them
                n_zero += len(bad)
                first_zero = first_zero or (f"{path}:{line0 + bad[0]}: video '{vid}': field "
                                            f"'{name}'[{bad[0]}] {seg[bad[0]].tolist()} (frames)")
            bad = np.flatnonzero((seg[:, 0] < 0) | (seg[:, 1] > limit))
            if len(bad):
                raise ValueError(f"{path}:{line0 + bad[0]}: video '{vid}': field '{name}'"
                                 f"[{bad[0]}]: segment {seg[bad[0]].tolist()} outside the "
                                 f"video's {num_frames} frames")
        if len(gt):
            gt_end = float(num_frames) if num_frames > 0 else np.inf
            outside = (gt[:, 1] < 0) | (gt[:, 2] > limit if num_frames > 0 else False)
            if outside.any():
                b = int(np.flatnonzero(outside)[0])
                n_clipped += int(outside.sum())
                first_clipped = first_clipped or (
                    f"{path}:{gt_line + b}: video '{vid}': ground truth {gt[b, 1:3].tolist()} "
                    f"(frames) outside the video's {num_frames} frames")
            gt[:, 1:3] = np.clip(gt[:, 1:3], 0.0, gt_end)
            gt = gt[~outside | (gt[:, 2] > gt[:, 1])]  # drop only what clipping emptied
        labels = np.concatenate([gt[:, 0], pr[:, 0]])
        if np.any(labels != np.round(labels)):
            raise ValueError(f"{where}: field 'label': non-integer label")
        if len(gt) and gt[:, 0].min() < 1:
            raise ValueError(f"{where}: field 'ground truth' label: labels are 1-based, got "
                             f"{int(gt[:, 0].min())}")
        if num_classes is not None and len(labels) and (
            labels.min() < 0 or labels.max() > num_classes
        ):
            raise ValueError(f"{where}: field 'label': labels must lie in [0, {num_classes}] "
                             f"(0 = background), got {int(labels.min())}..{int(labels.max())}")
        clip = float(num_frames) if num_frames > 0 else np.inf
        out[vid] = ProposalList(
            video_id=vid,
            num_frames=num_frames,
            fps=f,
            gt_segments=np.minimum(gt[:, 1:3], clip) / f,
            gt_labels=gt[:, 0].astype(np.int64) - 1,
            segments=np.minimum(pr[:, 3:5], clip) / f,
            labels=pr[:, 0].astype(np.int64),
            best_iou=pr[:, 1],
            overlap_self=pr[:, 2],
        )
    if n_clipped:
        warnings.warn(f"{path}: {n_clipped} ground-truth segment(s) outside their video's "
                      f"frames were clipped to it (or dropped when nothing was left), e.g. "
                      f"{first_clipped}", stacklevel=2)
    if n_zero:
        warnings.warn(f"{path}: {n_zero} zero-length proposal(s) (start frame = end frame) "
                      f"kept, e.g. {first_zero}", stacklevel=2)
    return out


def _fmt_rows(arr: np.ndarray, fmts: list[str]) -> str:
    if len(arr) == 0:
        return ""
    buf = io.StringIO()
    np.savetxt(buf, arr, fmt=fmts, delimiter=" ")
    return buf.getvalue()


def write_ssn_proposals(path: str | os.PathLike, proposals: Iterable[ProposalList]
                        | Mapping[str, ProposalList]) -> None:
    """Writes proposal lists in the SSN format (atomically); times are rounded
    to whole frames with each list's fps."""
    if isinstance(proposals, Mapping):
        proposals = proposals.values()
    parts = []
    for idx, p in enumerate(proposals):
        gt = np.column_stack([p.gt_labels + 1, np.rint(p.gt_segments * p.fps)])
        pr = np.column_stack([p.labels, p.best_iou, p.overlap_self,
                              np.rint(p.segments * p.fps)])
        parts.append(f"# {idx}\n{p.video_id}\n{int(p.num_frames)}\n1\n{len(gt)}\n")
        parts.append(_fmt_rows(gt, ["%d", "%d", "%d"]))
        parts.append(f"{len(pr)}\n")
        parts.append(_fmt_rows(pr, ["%d", "%.4f", "%.4f", "%d", "%d"]))
    atomic_write(path, "".join(parts))


def read_bsn_csv(path: str | os.PathLike, duration: float, video_id: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Reads one BSN / BMN proposal CSV.

    Args:
        path (str or Path): The CSV file.
        duration (float): Video duration (s); :obj:`xmin` / :obj:`xmax` are
            fractions of it.
        video_id (str, optional): For messages. (default: the file stem)

    Returns:
        (numpy.ndarray, numpy.ndarray): Segments :obj:`[N, 2]` (s), scores :obj:`[N]`.
    """
    path = Path(path)
    vid = video_id if video_id is not None else path.stem
    where = f"{path}: video '{vid}'"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: proposal file not found") from None
    if not lines:
        raise ValueError(f"{where}: empty file (a header line is required)")
    header = [h.strip() for h in lines[0].split(",")]
    if header and header[0] == "":
        header = header[1:]  # pandas index column
        lines = [line.split(",", 1)[1] if "," in line else line for line in lines]
    for col in ("xmin", "xmax", "score"):
        if col not in header:
            raise ValueError(f"{where}: missing column '{col}' (header: {header})")
    body = [line for line in lines[1:] if line.strip()]
    if not body:
        return np.zeros((0, 2)), np.zeros(0)
    try:
        arr = np.array(",".join(body).split(","), dtype=np.float64)
    except ValueError:
        raise ValueError(f"{where}: non-numeric value") from None
    if arr.size != len(body) * len(header):
        raise ValueError(f"{where}: rows do not all have {len(header)} columns")
    arr = arr.reshape(len(body), len(header))
    x0, x1, score = (arr[:, header.index(c)] for c in ("xmin", "xmax", "score"))
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise ValueError(f"{where}: row {bad[0] + 1}: NaN/Inf")
    bad = np.flatnonzero(x0 > x1)
    if len(bad):
        raise ValueError(f"{where}: row {bad[0] + 1}: field 'xmin' > 'xmax' (inverted)")
    bad = np.flatnonzero((x0 < -1e-6) | (x1 > 1 + 1e-6))
    if len(bad):
        raise ValueError(f"{where}: row {bad[0] + 1}: 'xmin'/'xmax' outside [0, 1] "
                         "(times must be normalised by the duration)")
    seg = np.clip(np.stack([x0, x1], axis=1), 0.0, 1.0) * duration
    return seg, score


def write_bsn_csv(
    path: str | os.PathLike,
    segments: np.ndarray,
    scores: np.ndarray,
    duration: float,
    extra: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Writes one BSN-style CSV (atomically): :obj:`xmin,xmax,<extra...>,score`
    with times normalised by :obj:`duration`."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2) / duration
    cols = {"xmin": seg[:, 0], "xmax": seg[:, 1]}
    for k, v in (extra or {}).items():
        cols[k] = np.asarray(v, dtype=np.float64).reshape(-1)
    cols["score"] = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = {len(v) for v in cols.values()}
    if len(n) > 1:
        raise ValueError(f"{path}: columns differ in length {sorted(n)}")
    arr = np.column_stack(list(cols.values())) if len(seg) else np.zeros((0, len(cols)))
    body = _fmt_rows(arr, ["%.10g"] * len(cols)).replace(" ", ",")
    atomic_write(path, ",".join(cols) + "\n" + body)


def read_bsn_folder(folder: str | os.PathLike, durations: Mapping[str, float]
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads :obj:`<folder>/<video_id>.csv` for every video in :obj:`durations`."""
    folder = Path(folder)
    return {vid: read_bsn_csv(folder / f"{vid}.csv", d, vid) for vid, d in durations.items()}
