"""Plain-loop reference evaluators: straight transcriptions of the official ActivityNet logic
(per class, per prediction, per threshold, per ground-truth instance), written for clarity,
not speed. The fast evaluators in ``tagraph.evaluation`` are tested against these.
"""

from __future__ import annotations

import numpy as np


def _tiou(p, g):
    # official utils.segment_iou for one (target=prediction, candidate=gt) pair
    inter = max(min(p[1], g[1]) - max(p[0], g[0]), 0.0)
    union = (g[1] - g[0]) + (p[1] - p[0]) - inter
    if union == 0:
        return float("nan")
    return inter / union


def _interpolated_ap(prec, rec):
    mprec = [0.0, *prec, 0.0]
    mrec = [0.0, *rec, 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    mprec, mrec = np.array(mprec), np.array(mrec)
    idx = [i for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]]
    idx = np.array(idx, dtype=np.int64)
    return np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])


def reference_detection_map(gt, preds, thresholds, ambiguous=None):
    """gt: list of (video, label, start, end) of the evaluated subset, in file order.
    preds: list of (video, label, score, start, end) in file order.
    ambiguous: optional list of (video, start, end).
    Returns (labels, ap [T, C])."""
    if ambiguous:
        kept = []
        for p in preds:
            drop = False
            for v, s, e in ambiguous:
                if v == p[0] and min(p[4], e) - max(p[3], s) > 0:
                    drop = True
            if not drop:
                kept.append(p)
        preds = kept
    labels = []
    for _, label, _, _ in gt:
        if label not in labels:
            labels.append(label)
    T = len(thresholds)
    ap = np.zeros((T, len(labels)))
    for c, label in enumerate(labels):
        gts = [g for g in gt if g[1] == label]
        by_video = {}
        for j, g in enumerate(gts):
            by_video.setdefault(g[0], []).append(j)
        ps = [p for p in preds if p[1] == label]
        if not ps:
            continue
        scores = np.array([p[2] for p in ps], dtype=np.float64)
        order = scores.argsort()[::-1]
        ps = [ps[i] for i in order]
        lock = [[-1] * len(gts) for _ in range(T)]
        tp = [[0.0] * len(ps) for _ in range(T)]
        fp = [[0.0] * len(ps) for _ in range(T)]
        for i, p in enumerate(ps):
            if p[0] not in by_video:
                for t in range(T):
                    fp[t][i] = 1.0
                continue
            js = by_video[p[0]]
            tious = np.array([_tiou((p[3], p[4]), (gts[j][2], gts[j][3])) for j in js])
            scan = tious.argsort()[::-1]
            for t, thr in enumerate(thresholds):
                for k in scan:
                    if tious[k] < thr:
                        fp[t][i] = 1.0
                        break
                    if lock[t][js[k]] >= 0:
                        continue
                    tp[t][i] = 1.0
                    lock[t][js[k]] = i
                    break
                if fp[t][i] == 0 and tp[t][i] == 0:
                    fp[t][i] = 1.0
        for t in range(T):
            tp_cum = np.cumsum(tp[t])
            fp_cum = np.cumsum(fp[t])
            rec = tp_cum / float(len(gts))
            prec = tp_cum / (tp_cum + fp_cum)
            ap[t, c] = _interpolated_ap(list(prec), list(rec))
    return labels, ap
