r"""Why a detector fails: DETAD's error diagnosis of temporal action detections.

Following `Alwassel et al., "Diagnosing Error in Temporal Action Detectors" (ECCV 2018)
<https://doi.org/10.1007/978-3-030-01219-9_16>`_ (DETAD,
`code <https://github.com/HumamAlwassel/DETAD>`_): the false-positive profile of the
top-ranked predictions, the mAP gained by removing each type of false positive, the normalized
mAP and its sensitivity to action characteristics, and the false-negative rate per
characteristic bin. The matching is :func:`~tagraph.evaluation.detection_map`'s (official
ActivityNet, bit-identical), so :attr:`DetectionAnalysis.mAP` equals its mAP at the analysed
threshold.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tagraph.evaluation.detection import (
    GroundTruthLike,
    PredictionsLike,
    _codes,
    _group_pairs,
    _load_inputs,
    _match,
    _official_tiou,
    _thresholds,
)
from tagraph.evaluation.recall import _rank_in_groups

__all__ = [
    "ERROR_TYPES",
    "CHARACTERISTIC_BINS",
    "PROFILE_K",
    "CharacteristicSensitivity",
    "DetectionAnalysis",
    "analyze_detections",
]

#: Prediction categories, in DETAD's order: a true positive, then the five false-positive types.
ERROR_TYPES: tuple[str, ...] = (
    "true_positive",
    "double_detection",
    "wrong_label",
    "localization",
    "confusion",
    "background",
)
_TITLES = ("True Positive", "Double Detection", "Wrong Label", "Localization", "Confusion",
           "Background")
TP, DOUBLE, WRONG_LABEL, LOCALIZATION, CONFUSION, BACKGROUND = range(6)

#: The false-positive profile covers the top :math:`k \cdot G_c` predictions, k = 1..PROFILE_K.
PROFILE_K: int = 10

_SIZES = ("XS", "S", "M", "L", "XL")
#: DETAD's bins of the action characteristics, ``{preset: {characteristic: (edges, names)}}``.
#: Bins are right-closed, the first also closed on the left (``pandas.cut(...,
#: include_lowest=True)`` as in DETAD): :obj:`coverage` is the instance length over the video
#: duration, :obj:`length` the instance length in seconds, :obj:`num_instances` the number of
#: instances of the same class in the video. ``activitynet`` are the paper's bins,
#: ``thumos14`` those DETAD's code uses for THUMOS14.
CHARACTERISTIC_BINS: dict[str, dict[str, tuple[tuple[float, ...], tuple[str, ...]]]] = {
    "activitynet": {
        "coverage": (tuple(float(x) for x in np.linspace(0.0, 1.0, 6)), _SIZES),
        "length": ((0.0, 30.0, 60.0, 120.0, 180.0, float("inf")), _SIZES),
        "num_instances": ((-1.0, 1.0, 4.0, 8.0, float("inf")), _SIZES[:4]),
    },
    "thumos14": {
        "coverage": ((0.0, 0.02, 0.04, 0.06, 0.08, 1.0), _SIZES),
        "length": ((0.0, 3.0, 6.0, 12.0, 18.0, float("inf")), _SIZES),
        "num_instances": ((-1.0, 1.0, 40.0, 80.0, float("inf")), _SIZES[:4]),
    },
}
_CHARACTERISTICS = ("coverage", "length", "num_instances")


def _nan_to_none(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


@dataclass
class CharacteristicSensitivity:
    r"""Normalized mAP and false-negative rate per bin of one action characteristic.

    Attributes:
        name (str): :obj:`"coverage"`, :obj:`"length"` or :obj:`"num_instances"`.
        bins (list[str]): Bin names (e.g. ``XS`` .. ``XL``).
        edges (numpy.ndarray): :obj:`[B + 1]` bin edges (right-closed bins).
        num_gt (numpy.ndarray): :obj:`[B]` ground-truth instances per bin.
        mAP_N (numpy.ndarray): :obj:`[B]` normalized mAP of the bin's instances (NaN: empty bin).
        fn_rate (numpy.ndarray): :obj:`[B]` fraction of the bin's instances not detected
            (NaN: empty bin).
        num_unbinned (int): Instances in no bin (coverage without a video duration or above 1).
    """

    name: str
    bins: list[str]
    edges: np.ndarray
    num_gt: np.ndarray
    mAP_N: np.ndarray
    fn_rate: np.ndarray
    num_unbinned: int = 0

    def to_dict(self) -> dict[str, Any]:
        r"""Plain lists; NaN (empty bin) and infinite edges become :obj:`None`."""
        return {
            "bins": list(self.bins),
            "edges": [_nan_to_none(e) for e in self.edges],
            "num_gt": [int(n) for n in self.num_gt],
            "mAP_N": [_nan_to_none(m) for m in self.mAP_N],
            "fn_rate": [_nan_to_none(f) for f in self.fn_rate],
            "num_unbinned": int(self.num_unbinned),
        }


@dataclass
class DetectionAnalysis:
    r"""DETAD's diagnosis of a set of detections at one tIoU threshold.

    Attributes:
        labels (list[str]): Class names (order of first appearance in the ground truth).
        tiou (float): tIoU threshold of a true positive.
        min_tiou (float): Lowest tIoU of a localization or confusion error.
        num_gt (numpy.ndarray): :obj:`[C]` ground-truth instances per class (:math:`G_c`).
        num_predictions (int): Predictions analysed (those of classes in the ground truth).
        average_instances (float): :math:`N`, ground-truth instances per class on average.
        ap (numpy.ndarray): :obj:`[C]` average precision (that of
            :func:`~tagraph.evaluation.detection_map`).
        ap_n (numpy.ndarray): :obj:`[C]` normalized average precision.
        recall (numpy.ndarray): :obj:`[C]` recall of all predictions (the AP left when every
            false positive is removed).
        fp_counts (numpy.ndarray): :obj:`[PROFILE_K, 6]` predictions of each category
            (:data:`ERROR_TYPES`) ranked in :math:`((k-1) G_c, k G_c]` within their class,
            summed over classes.
        mAP_removed (dict[str, float]): mAP after removing the false positives of each type
            (and of all types, key :obj:`"all"`).
        mAP_N_removed (dict[str, float]): The same for the normalized mAP.
        fn_rate (float): Fraction of ground-truth instances not detected.
        fn_min_precision (float): Normalized precision a match needs to count as a detection in
            :attr:`fn_rate`.
        sensitivity (dict[str, CharacteristicSensitivity]): Per characteristic.
        bins_preset (str): Name of the bins used (or :obj:`"custom"`).
    """

    labels: list[str]
    tiou: float
    min_tiou: float
    num_gt: np.ndarray
    num_predictions: int
    average_instances: float
    ap: np.ndarray
    ap_n: np.ndarray
    recall: np.ndarray
    fp_counts: np.ndarray
    mAP_removed: dict[str, float]
    mAP_N_removed: dict[str, float]
    fn_rate: float
    fn_min_precision: float
    sensitivity: dict[str, CharacteristicSensitivity]
    bins_preset: str = "custom"

    @property
    def mAP(self) -> float:
        r"""Mean average precision over classes."""
        return float(self.ap.mean())

    @property
    def mAP_N(self) -> float:
        r"""Mean normalized average precision over classes."""
        return float(self.ap_n.mean())

    @property
    def mAP_gain(self) -> dict[str, float]:
        r"""mAP gained by removing the false positives of each type (and of all, :obj:`"all"`)."""
        return {k: v - self.mAP for k, v in self.mAP_removed.items()}

    @property
    def mAP_N_gain(self) -> dict[str, float]:
        r"""Normalized mAP gained by removing the false positives of each type (DETAD's
        "removing error impact")."""
        return {k: v - self.mAP_N for k, v in self.mAP_N_removed.items()}

    @property
    def fp_profile(self) -> np.ndarray:
        r""":obj:`[PROFILE_K, 6]` fraction of each category among the top :math:`k G_c`
        predictions of every class (row :math:`k - 1`); rows sum to 1 (all zero without
        predictions)."""
        return _fractions(np.cumsum(self.fp_counts, axis=0))

    @property
    def fp_profile_slices(self) -> np.ndarray:
        r""":obj:`[PROFILE_K, 6]` fraction of each category among the predictions ranked in
        :math:`((k-1) G_c, k G_c]` (the bars of DETAD's plot)."""
        return _fractions(self.fp_counts)

    def to_dict(self) -> dict[str, Any]:
        r"""Every figure as JSON-serialisable values (NaN and infinity become :obj:`None`)."""
        return {
            "tiou": self.tiou,
            "min_tiou": self.min_tiou,
            "num_classes": len(self.labels),
            "num_gt": int(self.num_gt.sum()),
            "num_predictions": int(self.num_predictions),
            "average_instances": float(self.average_instances),
            "mAP": self.mAP,
            "mAP_N": self.mAP_N,
            "recall": float(self.recall.mean()),
            "per_class": {
                label: {"num_gt": int(self.num_gt[c]), "AP": float(self.ap[c]),
                        "AP_N": float(self.ap_n[c]), "recall": float(self.recall[c])}
                for c, label in enumerate(self.labels)
            },
            "fp_profile": {
                "k": list(range(1, PROFILE_K + 1)),
                "types": list(ERROR_TYPES),
                "top_kG": self.fp_profile.tolist(),
                "slices": self.fp_profile_slices.tolist(),
                "slice_counts": self.fp_counts.tolist(),
            },
            "removed_error": {
                "mAP": dict(self.mAP_removed),
                "mAP_N": dict(self.mAP_N_removed),
                "mAP_gain": self.mAP_gain,
                "mAP_N_gain": self.mAP_N_gain,
            },
            "false_negatives": {"fn_rate": float(self.fn_rate),
                                "min_normalized_precision": self.fn_min_precision},
            "bins": self.bins_preset,
            "sensitivity": {name: s.to_dict() for name, s in self.sensitivity.items()},
        }

    def table(self) -> str:
        r"""Plain-text tables: FP profile, removed-error impact, sensitivity with FN rates."""
        out = [
            f"tIoU {self.tiou:g}: mAP {100 * self.mAP:.2f}  mAP_N {100 * self.mAP_N:.2f} "
            f"(N = {self.average_instances:.1f} instances per class)  recall "
            f"{100 * self.recall.mean():.2f}  FN rate {100 * self.fn_rate:.2f}",
            "",
            "False-positive profile (% of the top k*G predictions of each class)",
        ]
        prof = self.fp_profile
        out.append(_grid(["top", *_TITLES],
                         [[f"{k + 1}G", *[f"{100 * v:.1f}" for v in prof[k]]]
                          for k in range(PROFILE_K)]))
        out += ["", "Removing each false-positive type (gain in points)"]
        rows = [[_TITLES[i], f"{100 * self.mAP_gain[name]:+.2f}",
                 f"{100 * self.mAP_N_gain[name]:+.2f}"]
                for i, name in enumerate(ERROR_TYPES) if i != TP]
        rows.append(["all", f"{100 * self.mAP_gain['all']:+.2f}",
                     f"{100 * self.mAP_N_gain['all']:+.2f}"])
        out.append(_grid(["error type", "mAP", "mAP_N"], rows))
        out += ["", f"Sensitivity (bins: {self.bins_preset}; mAP_N and FN rate in %)"]
        for name, s in self.sensitivity.items():
            rows = [["instances", *[str(int(n)) for n in s.num_gt]],
                    ["mAP_N", *[_pct(v) for v in s.mAP_N]],
                    ["FN rate", *[_pct(v) for v in s.fn_rate]]]
            if s.num_unbinned:
                out.append(f"({s.num_unbinned} {name} values in no bin)")
            out += [_grid([name, *s.bins], rows), ""]
        if out[-1] == "":
            out.pop()
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(classes={len(self.labels)}, tiou={self.tiou:g}, "
                f"mAP={self.mAP:.4f}, mAP_N={self.mAP_N:.4f}, fn_rate={self.fn_rate:.4f})")


def _pct(v: float) -> str:
    return "-" if not np.isfinite(v) else f"{100 * v:.1f}"


def _grid(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, rows)])


def _fractions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


# ---------------------------------------------------------------------------------------------
# the analysis
# ---------------------------------------------------------------------------------------------


def analyze_detections(
    ground_truth: GroundTruthLike,
    predictions: PredictionsLike,
    tiou: float = 0.5,
    subset: str | None = None,
    ambiguous: str | os.PathLike | Mapping[str, Any] | None = None,
    min_tiou: float = 0.1,
    bins: str | Mapping[str, tuple[Sequence[float], Sequence[str]]] = "activitynet",
    fn_min_precision: float = 0.05,
) -> DetectionAnalysis:
    r"""DETAD's error diagnosis of temporal action detections at one tIoU threshold.

    Implements the analyses of `"Diagnosing Error in Temporal Action Detectors"
    <https://doi.org/10.1007/978-3-030-01219-9_16>`_ (Alwassel et al., ECCV 2018) on the inputs of
    :func:`~tagraph.evaluation.detection_map`, with its matching and ranking (official
    ActivityNet, ties included): a prediction is a true positive when it matches a ground-truth
    instance at tIoU :math:`\geq \alpha` (:obj:`tiou`). A false positive is classified by the
    instance of its video (any class) with the highest tIoU :math:`t` (first in file order on
    ties; 0/0 tIoU of zero-length segments counts as a match, as in the official matching), as
    DETAD does:

    * *double detection*: :math:`t \geq \alpha`, same label (the instance is already matched);
    * *wrong label*: :math:`t \geq \alpha`, other label;
    * *localization error*: :math:`t_{\min} \leq t < \alpha`, same label;
    * *confusion error*: :math:`t_{\min} \leq t < \alpha`, other label;
    * *background error*: :math:`t < t_{\min}` (:obj:`min_tiou`, 0.1), or no instance in the
      video (including videos outside :obj:`subset`).

    **False-positive profile**: the share of each category among the top :math:`k G_c`
    predictions of every class (:math:`G_c` its instances), :math:`k = 1..10`
    (:attr:`DetectionAnalysis.fp_profile`; DETAD's plot shows the slices
    :math:`((k-1) G_c, k G_c]`, :attr:`~DetectionAnalysis.fp_profile_slices`).
    **Removing errors**: AP and normalized AP recomputed after dropping the false positives of
    one type (all predictions of the class, so the base is :func:`detection_map`'s mAP; DETAD's
    script uses the top :math:`10 G_c`). Dropping all of them leaves AP = recall (up to
    rounding).

    **Normalized AP** replaces the precision by

    .. math::
        P_N = \frac{R \cdot N}{R \cdot N + F},

    with :math:`R` the recall, :math:`F` the false positives among the top predictions and
    :math:`N = G / C` the average number of instances per class, so classes with many or few
    instances compare on the same footing; AP is the interpolated area as in the official evaluator.
    **Sensitivity**: for each bin of :obj:`coverage` (length / video duration), :obj:`length`
    (s) and :obj:`num_instances` (instances of the class in the video), the normalized mAP over
    the classes with instances in the bin, recall counting only the bin's instances and true
    positives matched outside the bin ignored (false positives kept), as DETAD. **False
    negatives**: an instance is missed unless matched by a prediction whose normalized precision
    at its rank exceeds :obj:`fn_min_precision` (DETAD: 5%); the rate is reported per bin.

    Everything is vectorised over predictions; a THUMOS14-test-sized input (45k predictions)
    takes a fraction of a second.

    Args:
        ground_truth (str, os.PathLike or dict): ActivityNet GT JSON path, its content, or
            ``{video_id: VideoAnnotation}``.
        predictions (str, os.PathLike, dict or Detections): Results JSON path, its content, or
            :class:`~tagraph.io.Detections` (labels must belong to the GT taxonomy).
        tiou (float, optional): tIoU threshold :math:`\alpha` of a true positive, in
            :obj:`(0, 1]`. (default: :obj:`0.5`)
        subset (str, optional): Analyse the videos of this subset (case-insensitive).
            (default: :obj:`None`, all videos)
        ambiguous (str, os.PathLike or dict, optional): Ambiguous intervals; overlapping
            predictions are dropped first (:func:`~tagraph.evaluation.filter_ambiguous`).
            (default: :obj:`None`)
        min_tiou (float, optional): :math:`t_{\min}`, lowest tIoU of a localization or confusion
            error. (default: :obj:`0.1`)
        bins (str or dict, optional): Characteristic bins: a :data:`CHARACTERISTIC_BINS` preset
            (:obj:`"activitynet"`, :obj:`"thumos14"`) or ``{characteristic: (edges, names)}``.
            (default: :obj:`"activitynet"`)
        fn_min_precision (float, optional): Normalized precision above which a match counts
            as a detection for the false-negative rates. (default: :obj:`0.05`)

    Returns:
        DetectionAnalysis: All figures; :obj:`.to_dict()` for JSON, :obj:`str()` for tables.
    """
    thr = _thresholds(tiou)
    if thr.size != 1 or not thr[0] > 0:
        raise ValueError(f"tiou must be one threshold in (0, 1], got {thr.tolist()}")
    alpha = float(thr[0])
    if not 0 < min_tiou <= 1:
        raise ValueError(f"min_tiou must lie in (0, 1], got {min_tiou}")
    if not 0 <= fn_min_precision < 1:
        raise ValueError(f"fn_min_precision must lie in [0, 1), got {fn_min_precision}")
    preset, bin_spec = _bin_spec(bins)

    gt, det, labels, vid_names, gt_vid, gt_cls, gt_seg, p_cls, _ = _load_inputs(
        ground_truth, predictions, subset, ambiguous)
    # as detection_map: predictions of classes without ground truth in the subset are not scored
    keep = p_cls >= 0
    p_cls, score, seg = p_cls[keep], det.score[keep], det.segment[keep]
    p_vid = _codes(det.video_id[keep], vid_names)
    C, V, G, P = len(labels), len(vid_names), len(gt_cls), len(p_cls)
    num_gt = np.bincount(gt_cls, minlength=C)
    npos = num_gt.astype(np.float64)
    avg_n = G / C

    # 1) official ranking per class and greedy matching at alpha (detection_map's code)
    ranked, bounds = _rank_in_groups(p_cls, score, C)
    rank = np.empty(P, dtype=np.int64)
    rank[ranked] = np.arange(P)
    tp = _match(gt_vid, gt_cls, gt_seg, V, p_vid, p_cls, seg, ranked, rank,
                np.array([alpha]))[0]

    # 2) (prediction, instance) pairs of a video that can reach min_tiou
    pair_p, pair_g, pair_t = _video_pairs(p_vid, seg, gt_vid, gt_seg)

    # 3) category of each prediction
    kind = _categories(tp, p_cls, gt_cls, pair_p, pair_g, pair_t, alpha, min_tiou)

    # 4) profile: slice ((k-1) G_c, k G_c] of each prediction's rank in its class
    cls_r, tp_r, kind_r = p_cls[ranked], tp[ranked], kind[ranked]
    slice_r = (np.arange(P) - bounds[cls_r]) // num_gt[cls_r]
    in_prof = slice_r < PROFILE_K
    fp_counts = np.bincount(slice_r[in_prof] * 6 + kind_r[in_prof],
                            minlength=PROFILE_K * 6).reshape(PROFILE_K, 6)

    # 5) AP, AP_N, and both after removing each type of false positive
    ap, _ = _interpolated_ap(cls_r, tp_r, npos, C)
    ap_n, prec_n = _interpolated_ap(cls_r, tp_r, npos, C, avg_n)
    removed, removed_n = {}, {}
    for e, name in enumerate(ERROR_TYPES):
        if e == TP:
            continue
        m = kind_r != e
        removed[name] = float(_interpolated_ap(cls_r[m], tp_r[m], npos, C)[0].mean())
        removed_n[name] = float(_interpolated_ap(cls_r[m], tp_r[m], npos, C, avg_n)[0].mean())
    removed["all"] = float(_interpolated_ap(cls_r[tp_r], tp_r[tp_r], npos, C)[0].mean())
    removed_n["all"] = float(
        _interpolated_ap(cls_r[tp_r], tp_r[tp_r], npos, C, avg_n)[0].mean())
    recall = np.bincount(p_cls[tp], minlength=C) / npos

    # 6) which instance each true positive took; detections for the false negatives
    matched = _assignment(tp, rank, p_cls, p_vid, V, seg, gt_cls, gt_vid, gt_seg,
                          pair_p, pair_g, pair_t, alpha)
    tp_pred = ranked[np.flatnonzero(tp_r)]  # true positives in the order of prec_n
    detected = np.zeros(G, dtype=bool)
    detected[matched[tp_pred[prec_n > fn_min_precision]]] = True

    # 7) sensitivity to the characteristics of the instances
    matched_r = matched[ranked]
    values = _characteristics(gt, vid_names, gt_vid, gt_cls, gt_seg, V)
    sensitivity = {}
    for name, (edges, names) in bin_spec.items():
        which = _bin_index(values[name], edges)
        B = len(names)
        n_bin = np.bincount(which[which >= 0], minlength=B)
        m_n = np.full(B, np.nan)
        fn = np.full(B, np.nan)
        for b in np.flatnonzero(n_bin):
            in_bin = which == b
            fn[b] = np.count_nonzero(in_bin & ~detected) / n_bin[b]
            npos_b = np.bincount(gt_cls[in_bin], minlength=C).astype(np.float64)
            m = ~tp_r | in_bin[np.maximum(matched_r, 0)]
            ap_b, _ = _interpolated_ap(cls_r[m], tp_r[m], npos_b, C, avg_n)
            m_n[b] = float(ap_b[npos_b > 0].mean())
        sensitivity[name] = CharacteristicSensitivity(
            name, list(names), np.asarray(edges, dtype=np.float64), n_bin, m_n, fn,
            int(np.count_nonzero(which < 0)))

    return DetectionAnalysis(
        labels=labels, tiou=alpha, min_tiou=float(min_tiou), num_gt=num_gt,
        num_predictions=P, average_instances=float(avg_n), ap=ap, ap_n=ap_n, recall=recall,
        fp_counts=fp_counts, mAP_removed=removed, mAP_N_removed=removed_n,
        fn_rate=float(np.count_nonzero(~detected) / G), fn_min_precision=float(fn_min_precision),
        sensitivity=sensitivity, bins_preset=preset,
    )


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _bin_spec(
    bins: str | Mapping[str, tuple[Sequence[float], Sequence[str]]],
) -> tuple[str, dict[str, tuple[np.ndarray, list[str]]]]:
    if isinstance(bins, str):
        if bins.lower() not in CHARACTERISTIC_BINS:
            raise ValueError(f"unknown bins preset '{bins}' "
                             f"(presets: {', '.join(sorted(CHARACTERISTIC_BINS))})")
        preset, spec = bins.lower(), CHARACTERISTIC_BINS[bins.lower()]
    else:
        preset, spec = "custom", bins
    out = {}
    for name, (edges, names) in spec.items():
        if name not in _CHARACTERISTICS:
            raise ValueError(f"unknown characteristic '{name}' (known: {list(_CHARACTERISTICS)})")
        e = np.asarray(edges, dtype=np.float64).reshape(-1)
        if len(e) < 2 or len(names) != len(e) - 1 or not (np.diff(e) > 0).all():
            raise ValueError(f"bins of '{name}': need increasing edges and one name per bin, "
                             f"got {list(edges)} and {list(names)}")
        out[name] = (e, [str(n) for n in names])
    return preset, out


def _bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Right-closed bins, the first closed on the left (``pandas.cut(include_lowest=True)``);
    -1 outside the edges or NaN."""
    b = np.searchsorted(edges, x, side="left")
    b[x == edges[0]] = 1
    b = b - 1
    b[(b < 0) | (b >= len(edges) - 1) | np.isnan(x)] = -1
    return b


def _characteristics(
    gt: Mapping[str, Any],
    vid_names: np.ndarray,
    gt_vid: np.ndarray,
    gt_cls: np.ndarray,
    gt_seg: np.ndarray,
    num_videos: int,
) -> dict[str, np.ndarray]:
    length = gt_seg[:, 1] - gt_seg[:, 0]
    duration = np.array([np.nan if gt[v].duration is None else float(gt[v].duration)
                         for v in vid_names.tolist()], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = length / duration[gt_vid]
    key = gt_cls.astype(np.int64) * num_videos + gt_vid
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return {"coverage": coverage, "length": length,
            "num_instances": counts[inverse.reshape(-1)].astype(np.float64)}


def _video_pairs(
    p_vid: np.ndarray, seg: np.ndarray, gt_vid: np.ndarray, gt_seg: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, instance, official tIoU) for every pair of one video that shares time,
    plus zero-length prediction x zero-length instance pairs (0/0 tIoU, NaN). Other pairs have
    tIoU 0. Exact: boundaries are compared through their ranks among all boundary values."""
    empty = np.empty(0, dtype=np.int64)
    (cand,) = np.nonzero(p_vid >= 0)
    if len(cand) == 0 or len(gt_vid) == 0:
        return empty, empty, np.empty(0)
    values, inv = np.unique(np.concatenate([seg[cand].reshape(-1), gt_seg.reshape(-1)]),
                            return_inverse=True)
    inv = inv.reshape(-1).astype(np.int64)
    width = len(values) + 1
    p_rank = inv[: 2 * len(cand)].reshape(-1, 2)
    g_rank = inv[2 * len(cand):].reshape(-1, 2)
    order = np.lexsort((g_rank[:, 0], gt_vid))
    vid = gt_vid[order].astype(np.int64) * width
    comp_start = vid + g_rank[order, 0]
    comp_end = np.maximum.accumulate(vid + g_rank[order, 1])
    pv = p_vid[cand].astype(np.int64) * width
    lo = np.searchsorted(comp_end, pv + p_rank[:, 0], side="right")
    hi = np.maximum(np.searchsorted(comp_start, pv + p_rank[:, 1], side="left"), lo)
    item, pos = _group_pairs(lo, hi - lo)
    pair_g = order[pos]
    ok = (g_rank[pair_g, 0] < p_rank[item, 1]) & (g_rank[pair_g, 1] > p_rank[item, 0])
    pair_p, pair_g = cand[item[ok]], pair_g[ok]

    zp = cand[seg[cand, 0] == seg[cand, 1]]
    (zg,) = np.nonzero(gt_seg[:, 0] == gt_seg[:, 1])
    if len(zp) and len(zg):
        zg = zg[np.argsort(gt_vid[zg], kind="stable")]
        zv = gt_vid[zg]
        start = np.searchsorted(zv, p_vid[zp], side="left")
        stop = np.searchsorted(zv, p_vid[zp], side="right")
        item, pos = _group_pairs(start, stop - start)
        pair_p = np.concatenate([pair_p, zp[item]])
        pair_g = np.concatenate([pair_g, zg[pos]])
    return pair_p, pair_g, _official_tiou(seg[pair_p], gt_seg[pair_g])


def _categories(
    tp: np.ndarray,
    p_cls: np.ndarray,
    gt_cls: np.ndarray,
    pair_p: np.ndarray,
    pair_g: np.ndarray,
    pair_t: np.ndarray,
    alpha: float,
    min_tiou: float,
) -> np.ndarray:
    """DETAD's category of each prediction from the instance of its video with the highest tIoU
    (NaN highest, first in file order on ties)."""
    kind = np.full(len(tp), BACKGROUND, dtype=np.int64)
    kind[tp] = TP
    fp = ~tp[pair_p]
    a, g = pair_p[fp], pair_g[fp]
    t = np.where(np.isnan(pair_t[fp]), np.inf, pair_t[fp])
    if len(a) == 0:
        return kind
    o = np.argsort(a, kind="stable")
    a, g, t = a[o], g[o], t[o]
    heads = np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1])))
    t_max = np.maximum.reduceat(t, heads)
    at_max = t == np.repeat(t_max, np.diff(heads, append=len(a)))
    g = np.minimum.reduceat(np.where(at_max, g, len(gt_cls)), heads)  # first in file order
    a, t = a[heads], t_max
    same = gt_cls[g] == p_cls[a]
    kind[a] = np.select(
        [(t >= alpha) & same, t >= alpha, (t >= min_tiou) & same, t >= min_tiou],
        [DOUBLE, WRONG_LABEL, LOCALIZATION, CONFUSION], BACKGROUND)
    return kind


def _segmented_suffix_max(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """max(x[i:end of i's segment]) for sorted segment ids, exactly (integer keys)."""
    if len(x) == 0:
        return x
    uniq, r = np.unique(x, return_inverse=True)
    seg_no = np.cumsum(np.concatenate(([0], seg[1:] != seg[:-1])))
    key = (seg_no[-1] - seg_no) * len(uniq) + r.reshape(-1)
    key = np.maximum.accumulate(key[::-1])[::-1]
    return uniq[key % len(uniq)]


def _interpolated_ap(
    cls: np.ndarray,
    tp: np.ndarray,
    npos: np.ndarray,
    num_classes: int,
    avg_instances: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Interpolated AP per class with the official float operations (bit-identical).

    :obj:`cls` / :obj:`tp`: the predictions kept, class after class, in rank order. Precision
    :math:`k / n` (:math:`k` true positives among the top :math:`n`), or with
    :obj:`avg_instances` :math:`N` DETAD's normalized precision :math:`R N / (R N + F)`,
    :math:`R = k / G_c`, :math:`F = n - k`. As in :func:`detection_map`, the official sum has a
    non-zero term at each true positive (plus a trailing :math:`0` when the recall stays below
    1); both precisions only drop between true positives, so the interpolated precision at a
    true positive is the maximum over the true positives from there on.

    Returns:
        :obj:`[C]` AP, and the (normalized) precision at each true positive, in input order.
    """
    C = num_classes
    counts = np.bincount(cls, minlength=C)
    starts = np.cumsum(counts) - counts
    (ti,) = np.nonzero(tp)
    c = cls[ti]
    n_tp = np.bincount(c, minlength=C)
    t_starts = np.cumsum(n_tp) - n_tp
    k = (np.arange(len(ti)) - t_starts[c] + 1).astype(np.float64)
    n = (ti - starts[c] + 1).astype(np.float64)
    pos = npos[c]
    if avg_instances is None:
        prec = k / n
    else:
        r = k / pos
        prec = r * avg_instances / (r * avg_instances + (n - k))
    terms = (k / pos - (k - 1.0) / pos) * _segmented_suffix_max(prec, c)
    ap = np.zeros(C)
    for cc in np.flatnonzero(counts):
        piece = terms[t_starts[cc]:t_starts[cc] + n_tp[cc]]
        ap[cc] = np.sum(np.append(piece, 0.0) if n_tp[cc] != npos[cc] else piece)
    return ap, prec


def _assignment(
    tp: np.ndarray,
    rank: np.ndarray,
    p_cls: np.ndarray,
    p_vid: np.ndarray,
    num_videos: int,
    seg: np.ndarray,
    gt_cls: np.ndarray,
    gt_vid: np.ndarray,
    gt_seg: np.ndarray,
    pair_p: np.ndarray,
    pair_g: np.ndarray,
    pair_t: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """The instance each true positive took (-1 for false positives).

    :func:`~tagraph.evaluation.detection._match` decides which predictions are true positives;
    the instance each one took follows by replaying the official choice for the true positives
    only: in rank order, each takes the first free instance of its class and video in the
    official scan order (``np.argsort(tiou_row)[::-1]``, the full row where eligible tIoUs tie)
    with tIoU >= alpha. Lock-step over (class, video) groups, as in ``_match``.
    """
    P, G = len(tp), len(gt_cls)
    matched = np.full(P, -1, dtype=np.int64)
    sel = tp[pair_p] & (gt_cls[pair_g] == p_cls[pair_p]) & ~(pair_t < alpha)
    a, g, t = pair_p[sel], pair_g[sel], pair_t[sel]
    if len(a) == 0:
        return matched
    prio = np.where(np.isnan(t), -np.inf, -t)

    # exact ties among a prediction's eligible instances: official order of its full row
    o = np.lexsort((prio, a))
    tie = (a[o][1:] == a[o][:-1]) & (prio[o][1:] == prio[o][:-1])
    tied = np.unique(a[o][1:][tie])
    if len(tied):
        gkey = gt_cls.astype(np.int64) * num_videos + gt_vid
        gorder = np.argsort(gkey, kind="stable")
        ukey, gstart, gcount = np.unique(gkey[gorder], return_index=True, return_counts=True)
        pos_in_group = np.empty(G, dtype=np.int64)
        pos_in_group[gorder] = np.arange(G) - np.repeat(gstart, gcount)
        tg = np.searchsorted(ukey, p_cls[tied].astype(np.int64) * num_videos + p_vid[tied])
        row_of = np.full(P, -1, dtype=np.int64)
        row_of[tied] = np.arange(len(tied))
        m_t = gcount[tg]
        inv_all = np.zeros((len(tied), int(m_t.max())), dtype=np.float64)
        for mm in np.unique(m_t):
            rows = np.nonzero(m_t == mm)[0]
            block = gorder[gstart[tg[rows]][:, None] + np.arange(mm)]
            row_tiou = _official_tiou(np.repeat(seg[tied[rows]], mm, axis=0),
                                      gt_seg[block.reshape(-1)]).reshape(len(rows), mm)
            order = np.argsort(row_tiou, axis=1)[:, ::-1]
            inv = np.empty_like(order)
            np.put_along_axis(inv, order, np.arange(mm)[None, :], axis=1)
            inv_all[rows, :mm] = inv
        is_tied = row_of[a] >= 0
        prio[is_tied] = inv_all[row_of[a[is_tied]], pos_in_group[g[is_tied]]]

    # step s: the s-th true positive (by rank) of every (class, video) group
    tps = np.unique(a)
    gk = p_cls[tps].astype(np.int64) * num_videos + p_vid[tps]
    o = np.lexsort((rank[tps], gk))
    new = np.concatenate(([True], gk[o][1:] != gk[o][:-1]))
    step_of = np.zeros(P, dtype=np.int64)
    step_of[tps[o]] = np.arange(len(o)) - np.maximum.accumulate(
        np.where(new, np.arange(len(o)), 0))
    steps = step_of[a]
    o = np.lexsort((a, steps))
    a, g, prio, steps = a[o], g[o], prio[o], steps[o]
    step_bounds = np.searchsorted(steps, np.arange(int(steps[-1]) + 2))
    locked = np.zeros(G, dtype=bool)
    for s in range(len(step_bounds) - 1):
        lo, hi = step_bounds[s], step_bounds[s + 1]
        aa, gg = a[lo:hi], g[lo:hi]
        heads = np.flatnonzero(np.concatenate(([True], aa[1:] != aa[:-1])))
        val = np.where(locked[gg], np.inf, prio[lo:hi])
        best = np.minimum.reduceat(val, heads)
        pick = np.flatnonzero((val == np.repeat(best, np.diff(heads, append=len(aa))))
                              & (val != np.inf))
        matched[aa[pick]] = gg[pick]
        locked[gg[pick]] = True
    return matched
