r"""Checks of a ground truth and a set of predictions taken together: the cases where both
files are valid on their own but the mAP is probably wrong (videos that do not match, times in
frames, several subsets mixed, missing predictions). :func:`~tagraph.evaluation.detection_map`
runs them and emits one :class:`EvaluationInputWarning` per finding; ``tagraph evaluate``
prints them as ``WARNING:`` lines.

The checks loop over videos (hundreds), never over predictions, which they handle as arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tagraph.io import Detections, VideoAnnotation
from tagraph.io.activitynet import EvaluationInputWarning, _subset_summary

__all__ = ["EvaluationInputWarning", "InputReport", "check_inputs"]

#: Predictions may end this many seconds after the video's duration before they count as
#: "beyond" (snippet windows and rounded durations overshoot a little).
DURATION_TOLERANCE_S = 1.0
#: Fraction of predictions beyond their video's duration above which a warning is given.
BEYOND_DURATION_FRACTION = 0.1
#: Ids shown as examples in a message.
EXAMPLES = 3


@dataclass
class InputReport:
    r"""What :func:`check_inputs` found.

    Attributes:
        prediction_videos (int): Distinct videos of the predictions.
        matched_videos (int): Of those, videos of the evaluated ground truth (the subset).
        messages (list[str]): One message per finding (empty when all looks right).
    """

    prediction_videos: int = 0
    matched_videos: int = 0
    messages: list[str] = field(default_factory=list)


def _examples(ids: list[str] | np.ndarray) -> str:
    ids = [str(i) for i in ids]
    shown = ", ".join(f"'{i}'" for i in ids[:EXAMPLES])
    return shown + (", ..." if len(ids) > EXAMPLES else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _video_runs(video_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct videos, their prediction counts and, per prediction, the index of its video.

    Predictions usually come grouped by video: the strings are compared once per run."""
    heads = np.flatnonzero(np.concatenate(([True], video_id[1:] != video_id[:-1])))
    run_len = np.diff(heads, append=len(video_id))
    names, inv = np.unique(video_id[heads], return_inverse=True)
    counts = np.bincount(inv.reshape(-1), weights=run_len, minlength=len(names)).astype(np.int64)
    return names, counts, np.repeat(inv.reshape(-1), run_len)


def _prefix_hint(unmatched: list[str], known: set[str]) -> str:
    """``predictions use a 'v_' prefix ...`` when adding or stripping it matches videos."""
    strip = sum(1 for u in unmatched if u.startswith("v_") and u[2:] in known)
    add = sum(1 for u in unmatched if "v_" + u in known)
    need = max(1, len(unmatched) // 2)
    if strip >= need:
        return (f"; hint: the predictions use a 'v_' prefix that the ground truth does not "
                f"({strip} would match without it)")
    if add >= need:
        return (f"; hint: the ground truth uses a 'v_' prefix that the predictions do not "
                f"({add} would match with it)")
    return ""


def check_inputs(
    everything: Mapping[str, VideoAnnotation],
    gt: Mapping[str, VideoAnnotation],
    det: Detections,
    subset: str | None = None,
    gt_name: str = "<ground truth>",
    pred_name: str = "<predictions>",
) -> InputReport:
    r"""Find the likely mistakes in a ground truth + predictions pair (see the module docstring).

    Args:
        everything (dict[str, VideoAnnotation]): The whole ground truth (all subsets).
        gt (dict[str, VideoAnnotation]): The evaluated part (:obj:`subset`'s videos).
        det (Detections): The predictions.
        subset (str, optional): The evaluated subset (:obj:`None`: all videos).
        gt_name (str, optional): How to name the ground truth in messages (its path).
        pred_name (str, optional): How to name the predictions in messages (their path).

    Returns:
        InputReport: Counts and messages; nothing is warned here.
    """
    report = InputReport()
    msgs = report.messages
    where = f"subset '{subset}' of {gt_name}" if subset is not None else gt_name
    if subset is None:
        subsets = {ann.subset for ann in everything.values()}
        if len(subsets) > 1:
            msgs.append(
                f"{gt_name}: the ground truth has several subsets ({_subset_summary(everything)}) "
                "and no subset was selected: all are evaluated together (pass subset=... / "
                "--subset)"
            )
    positive = [vid for vid, ann in gt.items() if len(ann)]
    if len(det) == 0:
        msgs.append(f"{pred_name}: no predictions at all: the mAP is 0 "
                    f"({_plural(len(positive), 'video')} with ground truth in {where})")
        return report

    names, counts, pred_video = _video_runs(det.video_id)
    report.prediction_videos = len(names)
    in_gt = np.fromiter((n in gt for n in names.tolist()), dtype=bool, count=len(names))
    in_file = np.fromiter((n in everything for n in names.tolist()), dtype=bool,
                          count=len(names))
    report.matched_videos = int(in_gt.sum())

    absent = ~in_file
    if absent.any():
        ids = names[absent].tolist()
        none = " (none of them matches: the mAP is 0)" if report.matched_videos == 0 else ""
        msgs.append(
            f"{pred_name}: {len(ids)} of {_plural(len(names), 'prediction video')} "
            f"({_plural(int(counts[absent].sum()), 'prediction')}) are not in the ground "
            f"truth {gt_name}, e.g. {_examples(ids)}{none}; they count as false positives"
            + _prefix_hint(ids, set(everything))
        )
    other = in_file & ~in_gt
    if other.any():
        ids = names[other].tolist()
        msgs.append(
            f"{pred_name}: {len(ids)} of {_plural(len(names), 'prediction video')} "
            f"({_plural(int(counts[other].sum()), 'prediction')}) belong to another subset than "
            f"'{subset}', e.g. '{ids[0]}' ({everything[ids[0]].subset!r}); they count as "
            "false positives"
        )

    covered = set(names[in_gt].tolist())
    missing = [vid for vid in positive if vid not in covered]
    if missing:
        msgs.append(
            f"{pred_name}: {len(missing)} of the {_plural(len(positive), 'video')} with ground "
            f"truth in {where} have no prediction, e.g. {_examples(missing)}; their instances "
            "count as misses"
        )

    # times beyond the durations (frames instead of seconds?), on videos with a duration
    dur = np.array([everything[n].duration if f and everything[n].duration is not None
                    else np.nan for n, f in zip(names.tolist(), in_file.tolist())],
                   dtype=np.float64)
    pred_dur = dur[pred_video]
    known = ~np.isnan(pred_dur)
    n_known = int(known.sum())
    if n_known:
        beyond = det.segment[:, 1] > pred_dur + DURATION_TOLERANCE_S  # False where NaN
        n_beyond = int(beyond.sum())
        if n_beyond > BEYOND_DURATION_FRACTION * n_known:
            row = int(np.flatnonzero(beyond)[0])
            s, e = det.segment[row].tolist()
            ratio = float(np.median(det.segment[beyond, 1] / np.maximum(pred_dur[beyond], 1e-9)))
            msgs.append(
                f"{pred_name}: {100 * n_beyond / n_known:.0f}% of the predictions "
                f"({n_beyond} of {n_known}) end more than {DURATION_TOLERANCE_S:g} s after "
                f"their video's duration, e.g. video '{det.video_id[row]}' segment "
                f"[{s:g}, {e:g}] vs duration {pred_dur[row]:g} s (median end / duration "
                f"{ratio:.1f}): frames instead of seconds?"
            )
    return report


def warn_inputs(report: InputReport, stacklevel: int = 2) -> None:
    """Emit each message of :obj:`report` as an :class:`EvaluationInputWarning`."""
    for msg in report.messages:
        warnings.warn(msg, EvaluationInputWarning, stacklevel=stacklevel + 1)
