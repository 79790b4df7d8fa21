r"""The embedded synthetic dataset :class:`SyntheticTAL` (no download).

The generative model is documented in :func:`generate_synthetic_tal` and in
``datasets/synthetic.md``; :class:`SyntheticTAL` writes the data in the same
on-disk layout as real THUMOS14 features (ActivityNet JSON + one
:obj:`<video_id>.npy` per video + SSN proposal lists) and reads it back through
:class:`~tagraph.data.TALDataset`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tagraph
from tagraph.data.clicks import simulate_clicks, video_rng, write_clicks
from tagraph.data.dataset import TALDataset
from tagraph.data.proposal_io import ProposalList, write_ssn_proposals
from tagraph.data.video import num_snippets_for
from tagraph.io import VideoAnnotation, atomic_write, save_annotations

__all__ = [
    "SYNTHETIC_SIZES",
    "SYNTHETIC_VARIANTS",
    "SyntheticFiles",
    "SyntheticTAL",
    "generate_synthetic_features",
    "generate_synthetic_tal",
    "synthetic_config",
]

#: Default parameters of the generative model (the ``"full"`` size).
DEFAULTS: dict[str, Any] = dict(
    num_train=200,            # videos in subset 'Validation' (training, as in THUMOS14)
    num_test=212,             # videos in subset 'Test'
    num_classes=20,
    group_sizes=(4, 4, 3, 3, 2, 2, 1, 1),  # scene groups of related classes
    feature_dim=2048,         # D; RGB = first D/2, Flow = last D/2
    fps=30.0,
    stride=16,                # frames between snippets
    window=16,                # frames per snippet
    duration_median=155.0,    # s, log-normal
    duration_sigma=0.8,
    duration_min=9.0,
    duration_max=1700.0,
    coverage_mean=0.29,       # fraction of a video that is action, Beta distributed
    coverage_concentration=7.0,
    length_median=3.6,        # s, median of the class medians (instances skew shorter)
    class_length_sigma=0.45,
    length_sigma=0.72,
    length_min=0.2,
    length_max=120.0,
    max_instances=250,
    second_class_prob=0.3,    # a video holds a second, related class
    primary_share=0.7,
    weak_instance_prob=0.15,  # instances with faint evidence
    # feature strengths (coefficients on unit-norm directions)
    scene_strength=1.5,
    context_leak=0.35,        # class appearance present in the whole video (context)
    appearance_strength=1.0,
    prep_strength=0.5,        # appearance just before / after an instance
    prep_seconds=2.0,
    motion_strength=1.0,
    phase_strength=1.0,
    burst_rate=1 / 40.0,      # background motion bursts per second
    burst_strength=0.8,
    appearance_noise=(0.9, 0.3),   # AR(1) (coefficient, std) on class appearance
    motion_noise=(0.7, 0.3),       # AR(1) on class motion
    rgb_noise=(0.95, 0.7),         # AR(1) on low-rank RGB nuisance factors
    flow_noise=(0.8, 0.7),         # AR(1) on low-rank Flow nuisance factors
    noise_rank=16,
    white_noise=0.5,
    noise_scale=1.0,          # multiplies every noise std above (difficulty knob)
    # how the features look on disk (feature geometry of a real extractor)
    nonnegative="none",       # "none" (signed), "relu" or "softplus" (I3D-like, post-ReLU pooled)
    feature_scale=1.0,        # overall scale, applied last
    # proposals
    proposals_per_second=1.5,
    jitter_copies=8,
    miss_rate=0.1,
    dtype="float32",
)

#: Named sizes; each overrides :data:`DEFAULTS`.
SYNTHETIC_SIZES: dict[str, dict[str, Any]] = {
    "small": dict(num_train=24, num_test=16, feature_dim=64, duration_median=60.0,
                  duration_sigma=0.35, duration_min=20.0, duration_max=150.0, noise_scale=0.6),
    "medium": dict(num_train=100, num_test=100, feature_dim=128),
    "full": {},
}


#: Named feature geometries: how real feature sets differ from one another
#: (extractor stride, dimension, sign, scale, noise, class count). Each is a
#: dict of :data:`DEFAULTS` overrides, combined with a size (the variant wins):
#: ``SyntheticTAL(root, size={**SYNTHETIC_SIZES["medium"], **SYNTHETIC_VARIANTS["i3d512"]})``
#: or ``tagraph train --config mil/synthetic --set data.variant=i3d512``.
#: A method's shipped config is expected to work on every one of them
#: (``benchmarks/wtal_table.py``).
SYNTHETIC_VARIANTS: dict[str, dict[str, Any]] = {
    # I3D-like: 512-d, non-negative (post-ReLU pooled, mean ~0.7), 16-frame stride
    "i3d512": dict(feature_dim=512, nonnegative="softplus", stride=16, window=16),
    # sparse non-negative (half the entries 0), 1024-d, half scale
    "relu1024": dict(feature_dim=1024, nonnegative="relu", feature_scale=0.5, stride=16,
                     window=16),
    # signed 2048-d at a 4-frame stride (ActionFormer's THUMOS14 features), 4x the snippets
    "signed2048s4": dict(feature_dim=2048, nonnegative="none", stride=4, window=16),
    # I3D-like at 10x the scale and 1.3x the noise
    "x10noisy": dict(feature_dim=512, nonnegative="softplus", feature_scale=10.0,
                     noise_scale=1.3, stride=16, window=16),
    # signed at 0.1x the scale, 10 classes in 6 scene groups
    "x0.1c10": dict(feature_dim=512, nonnegative="none", feature_scale=0.1, num_classes=10,
                    group_sizes=(3, 2, 2, 1, 1, 1), stride=16, window=16),
}

#: Values of the ``nonnegative`` parameter.
NONNEGATIVE = ("none", "relu", "softplus")


def synthetic_config(size: str | Mapping[str, Any] = "small", **overrides: Any) -> dict[str, Any]:
    """The full parameter dict for a named size (or a dict of overrides)."""
    if isinstance(size, str):
        if size not in SYNTHETIC_SIZES:
            raise ValueError(f"size must be one of {sorted(SYNTHETIC_SIZES)} or a dict, "
                             f"got {size!r}")
        cfg = {**DEFAULTS, **SYNTHETIC_SIZES[size]}
    else:
        unknown = set(size) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown SyntheticTAL parameters {sorted(unknown)}")
        cfg = {**DEFAULTS, **size}
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown SyntheticTAL parameters {sorted(unknown)}")
    cfg.update(overrides)
    cfg["group_sizes"] = tuple(int(g) for g in cfg["group_sizes"])
    if sum(cfg["group_sizes"]) != cfg["num_classes"]:
        raise ValueError(f"group_sizes {cfg['group_sizes']} must sum to num_classes "
                         f"{cfg['num_classes']}")
    if cfg["nonnegative"] not in NONNEGATIVE:
        raise ValueError(f"nonnegative must be one of {NONNEGATIVE}, got {cfg['nonnegative']!r}")
    if not (math.isfinite(float(cfg["feature_scale"])) and float(cfg["feature_scale"]) > 0):
        raise ValueError(f"feature_scale must be a positive number, got {cfg['feature_scale']!r}")
    if cfg["feature_dim"] % 2 or cfg["feature_dim"] < 4:
        raise ValueError(f"feature_dim must be even and >= 4, got {cfg['feature_dim']}")
    return cfg


@dataclass
class SyntheticFiles:
    """Where a generated synthetic dataset lives."""

    folder: Path
    annotation_file: Path
    feature_dir: Path
    classes_file: Path
    proposal_files: dict[str, Path]   # subset -> SSN list
    clicks_file: Path
    config: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return self.classes_file.read_text().split()


# ------------------------------------------------------------------------------------------
# vectorised helpers
# ------------------------------------------------------------------------------------------

def _ar1(e: np.ndarray, first: np.ndarray, a: float) -> np.ndarray:
    r"""AR(1) :math:`z_t = a z_{t-1} + \sqrt{1-a^2}\, e_t` along axis 0 of a
    flattened batch of sequences (:obj:`first` marks each sequence start, where
    :math:`z = e`), by a Hillis-Steele scan in :math:`\lceil \log_2 T \rceil`
    vectorised steps; stationary with unit variance."""
    z = e * math.sqrt(1 - a * a)
    z[first] = e[first]
    n = len(z)
    seq_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    pos = np.arange(n) - seq_start  # position inside its sequence
    s = 1
    while s < (pos.max(initial=0) + 1):
        ok = pos[s:] >= s
        z[s:][ok] += (a ** s) * z[:-s][ok]
        s *= 2
    return z


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _mix(shared: np.ndarray, own: np.ndarray, w: float) -> np.ndarray:
    v = w * shared + math.sqrt(1 - w * w) * own
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _config_hash(cfg: Mapping[str, Any], seed: int) -> str:
    blob = json.dumps({"cfg": cfg, "seed": seed, "v": _GENERATOR_VERSION}, sort_keys=True,
                      default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


_GENERATOR_VERSION = 2
_BANK = 8192  # rows of each white-noise bank


# ------------------------------------------------------------------------------------------
# generator
# ------------------------------------------------------------------------------------------

def _sample_annotations(cfg: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    C = cfg["num_classes"]
    V = cfg["num_train"] + cfg["num_test"]
    groups = np.repeat(np.arange(len(cfg["group_sizes"])), cfg["group_sizes"])
    group_of = groups[rng.permutation(C)]
    z = rng.standard_normal(C)
    z = (z - z.mean()) / max(z.std(), 1e-9)  # same spread of class lengths for every seed
    class_len = cfg["length_median"] * np.exp(cfg["class_length_sigma"] * z)

    dur = cfg["duration_median"] * np.exp(cfg["duration_sigma"] * rng.standard_normal(V))
    dur = np.round(np.clip(dur, cfg["duration_min"], cfg["duration_max"]), 2)
    c1 = rng.integers(0, C, V)
    # a second class from the same scene group
    same = group_of[None, :] == group_of[c1][:, None]
    same[np.arange(V), c1] = False
    has2 = same.any(1) & (rng.random(V) < cfg["second_class_prob"])
    r = rng.random((V, C)) * same
    c2 = np.where(has2, r.argmax(1), c1)
    k = cfg["coverage_concentration"]
    m = cfg["coverage_mean"]
    cover = np.clip(rng.beta(m * k, (1 - m) * k, V), 0.02, 0.75)
    mean_len = class_len * math.exp(cfg["length_sigma"] ** 2 / 2)
    n = np.clip(np.rint(cover * dur / mean_len[c1]), 1, cfg["max_instances"]).astype(np.int64)

    vid = np.repeat(np.arange(V), n)
    cls = np.where(has2[vid] & (rng.random(len(vid)) > cfg["primary_share"]), c2[vid], c1[vid])
    length = class_len[cls] * np.exp(cfg["length_sigma"] * rng.standard_normal(len(vid)))
    length = np.clip(length, cfg["length_min"], np.minimum(cfg["length_max"], 0.5 * dur[vid]))
    total = np.bincount(vid, length, minlength=V)
    scale = np.minimum(1.0, 0.85 * dur / np.maximum(total, 1e-9))
    length = np.maximum(length * scale[vid], cfg["length_min"])
    free = np.maximum(dur - np.bincount(vid, length, minlength=V), 0.0)
    # n + 1 gaps per video, Dirichlet(1) split of the free time
    gvid = np.repeat(np.arange(V), n + 1)
    g = rng.exponential(size=len(gvid))
    g = g / np.bincount(gvid, g, minlength=V)[gvid] * free[gvid]
    # interleave g0 l0 g1 l1 ... gn per video and take local cumulative sums
    off = np.concatenate([[0], np.cumsum(2 * n + 1)])
    seq = np.empty(off[-1])
    inst_rank = np.arange(len(vid)) - np.repeat(np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    gap_rank = np.arange(len(gvid)) - np.repeat(np.concatenate([[0], np.cumsum(n + 1)[:-1]]),
                                                n + 1)
    seq[off[:-1][gvid] + 2 * gap_rank] = g
    seq[off[:-1][vid] + 2 * inst_rank + 1] = length
    cs = np.cumsum(seq)
    base = np.concatenate([[0.0], cs[off[1:-1] - 1]])
    end = cs[off[:-1][vid] + 2 * inst_rank + 1] - base[vid]
    start = end - length
    start = np.round(start, 1)
    end = np.maximum(np.round(end, 1), start + cfg["length_min"])
    end = np.minimum(end, dur[vid])
    start = np.minimum(start, end - 0.1)
    amp = np.exp(0.3 * rng.standard_normal(len(vid)))
    amp = np.where(rng.random(len(vid)) < cfg["weak_instance_prob"], 0.4 * amp, amp)
    return dict(V=V, C=C, group_of=group_of, dur=dur, fps=np.full(V, float(cfg["fps"])), c1=c1,
                c2=c2, n=n, vid=vid, cls=cls, start=start, end=end, amp=amp)


def _features(cfg: Mapping[str, Any], ann: Mapping[str, Any], rng: np.random.Generator):
    """Per-snippet coefficients on the RGB / Flow bases (all videos at once)."""
    V, C = ann["V"], ann["C"]
    stride, window = cfg["stride"], cfg["window"]
    dur = ann["dur"]
    fps = ann["fps"]  # per video
    T = np.array([num_snippets_for(d, f, stride, window)
                  for d, f in zip(dur.tolist(), fps.tolist())])
    svid = np.repeat(np.arange(V), T)
    soff = np.concatenate([[0], np.cumsum(T)])
    t = np.arange(soff[-1]) - soff[:-1][svid]
    tau = (t * stride + window / 2) / fps[svid]
    h = window / 2 / fps[svid]
    N = len(t)

    # instance lookup: the last instance starting at or before tau, and the next one
    vid, start, end, cls, amp = ann["vid"], ann["start"], ann["end"], ann["cls"], ann["amp"]
    big = float(dur.max()) + 1e3
    key = start + vid * big
    i0 = np.searchsorted(key, tau + svid * big, side="right") - 1
    i1 = i0 + 1
    ok0 = (i0 >= 0) & (vid[np.clip(i0, 0, len(vid) - 1)] == svid) if len(vid) else \
        np.zeros(N, bool)
    ok1 = (i1 < len(vid)) & (vid[np.clip(i1, 0, max(len(vid) - 1, 0))] == svid) if len(vid) \
        else np.zeros(N, bool)
    i0c = np.clip(i0, 0, max(len(vid) - 1, 0))
    i1c = np.clip(i1, 0, max(len(vid) - 1, 0))

    def overlap(i, ok):
        o = np.minimum(end[i], tau + h) - np.maximum(start[i], tau - h)
        return np.where(ok, np.clip(o / (2 * h), 0, 1), 0.0)

    o0, o1 = overlap(i0c, ok0), overlap(i1c, ok1)
    use1 = o1 > o0
    j = np.where(use1, i1c, i0c)
    b = np.maximum(o0, o1)                          # body weight in [0, 1]
    length = end[j] - start[j]
    pl = np.clip(0.25 * length, 0.25, 1.5)
    ps = b * np.clip(1 - (tau - start[j]) / pl, 0, 1)  # start phase
    pe = b * np.clip(1 - (end[j] - tau) / pl, 0, 1)    # end phase
    u = np.clip((tau - start[j]) / np.maximum(length, 1e-6), 0, 1)
    # preparation / aftermath context around instances (appearance, no motion)
    ctx = cfg["prep_seconds"]
    pre = np.where(ok1 & (tau < start[i1c]), np.clip(1 - (start[i1c] - tau) / ctx, 0, 1), 0)
    post = np.where(ok0 & (tau > end[i0c]), np.clip(1 - (tau - end[i0c]) / ctx, 0, 1), 0)

    G = len(cfg["group_sizes"])
    k = cfg["noise_rank"]
    first = t == 0
    rows = np.arange(N)
    # ---- RGB coefficients: [scene G | appearance C | nuisance k]
    R = np.zeros((N, G + C + k))
    scene_amp = cfg["scene_strength"] * (1 + 0.2 * rng.standard_normal(V))
    R[rows, ann["group_of"][ann["c1"]][svid]] = scene_amp[svid]
    leak = cfg["context_leak"]
    R[rows, G + ann["c1"][svid]] += leak
    R[rows, G + ann["c2"][svid]] += leak * (ann["c2"] != ann["c1"])[svid]
    R[rows, G + cls[j]] += cfg["appearance_strength"] * amp[j] * b
    R[rows, G + cls[i1c]] += cfg["prep_strength"] * amp[i1c] * pre
    R[rows, G + cls[i0c]] += cfg["prep_strength"] * amp[i0c] * post
    ns = cfg["noise_scale"]
    a, s = cfg["appearance_noise"]
    R[:, G:G + C] += ns * s * _ar1(rng.standard_normal((N, C)), first, a)
    a, s = cfg["rgb_noise"]
    R[:, G + C:] += ns * s * _ar1(rng.standard_normal((N, k)), first, a)
    # ---- Flow coefficients: [motion C | start 1 | end 1 | start_c C | end_c C | generic 1 | k]
    F = np.zeros((N, 3 * C + 3 + k))
    F[rows, cls[j]] += cfg["motion_strength"] * amp[j] * b * (0.7 + 0.3 * np.sin(np.pi * u))
    a, s = cfg["motion_noise"]
    F[:, :C] += ns * s * _ar1(rng.standard_normal((N, C)), first, a)
    F[:, C] += cfg["phase_strength"] * ps
    F[:, C + 1] += cfg["phase_strength"] * pe
    F[rows, C + 2 + cls[j]] += 0.6 * cfg["phase_strength"] * ps
    F[rows, 2 * C + 2 + cls[j]] += 0.6 * cfg["phase_strength"] * pe
    # background motion bursts (camera moves, people walking): generic motion plus, half
    # of the time, the motion of a class of the video's scene group (hard negatives)
    nb = rng.poisson(cfg["burst_rate"] * dur)
    bvid = np.repeat(np.arange(V), nb)
    bs = rng.random(len(bvid)) * dur[bvid]
    bl = 2.0 * np.exp(0.5 * rng.standard_normal(len(bvid)))
    bi0 = np.clip(np.ceil((bs * fps[bvid] - window / 2) / stride), 0, T[bvid]).astype(np.int64)
    bi1 = np.clip(np.floor(((bs + bl) * fps[bvid] - window / 2) / stride) + 1, 0,
                  T[bvid]).astype(np.int64)
    bamp = cfg["burst_strength"] * np.exp(0.3 * rng.standard_normal(len(bvid)))
    diff = np.zeros(N + 1)
    np.add.at(diff, soff[:-1][bvid] + bi0, bamp)
    np.add.at(diff, soff[:-1][bvid] + bi1, -bamp)
    burst = np.cumsum(diff)[:N]
    F[:, 3 * C + 2] += 0.6 * cfg["motion_strength"] * b + burst
    distract = rng.random(len(bvid)) < 0.5
    dcls = np.where(rng.random(len(bvid)) < 0.5, ann["c1"][bvid], ann["c2"][bvid])
    diffc = np.zeros((N + 1, C))
    np.add.at(diffc, (soff[:-1][bvid] + bi0, dcls), 0.6 * bamp * distract)
    np.add.at(diffc, (soff[:-1][bvid] + bi1, dcls), -0.6 * bamp * distract)
    F[:, :C] += np.cumsum(diffc, axis=0)[:N]
    a, s = cfg["flow_noise"]
    F[:, 3 * C + 3:] += ns * s * _ar1(rng.standard_normal((N, k)), first, a)
    return T, soff, R, F


def _bases(cfg: Mapping[str, Any], ann: Mapping[str, Any], rng: np.random.Generator):
    C, G, k = ann["C"], len(cfg["group_sizes"]), cfg["noise_rank"]
    d = cfg["feature_dim"] // 2
    g = ann["group_of"]
    scene = _unit(rng, G, d)
    group_app = _unit(rng, G, d)
    app = _mix(group_app[g], _unit(rng, C, d), 0.6)       # related classes look alike
    BR = np.concatenate([scene, app, _unit(rng, k, d)])
    generic = _unit(rng, 1, d)
    group_mot = _unit(rng, G, d)
    mot = _mix(0.5 * group_mot[g] + 0.5 * generic, _unit(rng, C, d), 0.6)
    phase = _unit(rng, 2, d)
    phase_c = _mix(np.repeat(phase, C, axis=0), _unit(rng, 2 * C, d), 0.5)
    BF = np.concatenate([mot, phase, phase_c, generic, _unit(rng, k, d)])
    return BR, BF


def _proposals(cfg, ann, v, rng) -> np.ndarray:
    dur = float(ann["dur"][v])
    sel = ann["vid"] == v
    gt = np.stack([ann["start"][sel], ann["end"][sel]], 1)
    # jittered copies of ground truth (some instances missed entirely)
    keep = rng.random(len(gt)) >= cfg["miss_rate"]
    g = np.repeat(gt[keep], cfg["jitter_copies"], axis=0)
    L = g[:, 1] - g[:, 0]
    c = (g[:, 0] + g[:, 1]) / 2 + 0.25 * L * rng.standard_normal(len(g))
    L = L * np.exp(0.35 * rng.standard_normal(len(g)))
    jit = np.stack([c - L / 2, c + L / 2], 1)
    # multi-scale sliding windows, randomly thinned, plus random segments
    scales = 2.0 ** np.arange(0, 7)
    counts = np.maximum(np.floor((dur - scales) / (scales / 2)) + 1, 0).astype(np.int64)
    sc = np.repeat(scales, counts)
    rank = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    win = np.stack([rank * sc / 2, rank * sc / 2 + sc], 1)
    budget = int(cfg["proposals_per_second"] * dur)
    if len(win) > budget // 2:
        win = win[np.sort(rng.choice(len(win), budget // 2, replace=False))]
    nr = budget - len(win)
    rl = np.exp(rng.uniform(np.log(0.5), np.log(max(0.5, dur / 2)), nr))
    rs = rng.random(nr) * np.maximum(dur - rl, 0)
    rnd = np.stack([rs, rs + rl], 1)
    p = np.concatenate([jit, win, rnd])
    p = np.clip(p, 0, dur)
    fps = float(ann["fps"][v])
    p = p[p[:, 1] - p[:, 0] >= 1.0 / fps]
    return np.round(p * fps) / fps


def generate_synthetic_tal(
    root: str | os.PathLike,
    size: str | Mapping[str, Any] = "small",
    seed: int = 0,
    force: bool = False,
) -> SyntheticFiles:
    r"""Generates (or finds, when already generated with the same parameters)
    a synthetic THUMOS14-like dataset under :obj:`root`.

    **Generative model.** :math:`C` classes fall into scene groups (e.g.
    "cricket" holds two classes). Each video has a duration :math:`\sim`
    log-normal (median 155 s, clipped to [9, 1700] s; mean about 210 s), one
    primary class and, with probability 0.3, a second class of the same group;
    its action coverage :math:`\rho \sim \mathrm{Beta}` with mean 0.29 sets
    the number of instances :math:`n = \rho \cdot \mathrm{duration} / \bar l_c`
    (heavy-tailed: median about 8, mean about 15, up to 250). Each class has
    its own median length (3 s :math:`\cdot e^{\mathcal N(0, 0.45^2)}`),
    instance lengths are log-normal around it (0.2-120 s); instances are laid
    out without overlap, separated by a Dirichlet split of the free time, and
    rounded to 0.1 s. Snippet :math:`t` (16 frames at 30 fps by default) has
    features :math:`[x^{rgb}_t, x^{flow}_t] \in \mathbb R^{D}`:

    .. math::
        x^{rgb}_t &= \alpha_v S_{g(v)} + \sum_{c \in v} \lambda A_c
            + a_i b_t A_{c_i} + \tfrac12 a_{i'} r_t A_{c_{i'}}
            + \sum_c \epsilon^{A}_{t,c} A_c + \sum_k \eta^{rgb}_{t,k} U_k
            + \sigma \xi_t \\
        x^{flow}_t &= a_i b_t (0.7 + 0.3 \sin \pi u_t) M_{c_i}
            + s_t (P_s + 0.6 P_{s,c_i}) + e_t (P_e + 0.6 P_{e,c_i})
            + (0.6 b_t + \beta_t) M_0 + \sum_c \epsilon^{M}_{t,c} M_c
            + \sum_k \eta^{flow}_{t,k} W_k + \sigma \xi'_t

    with unit-norm random directions: scene :math:`S_g`, class appearance
    :math:`A_c` (sharing a group component, so related classes look alike),
    class motion :math:`M_c` (sharing group and generic-motion components),
    generic motion :math:`M_0`, start / end phase :math:`P_s, P_e` (plus
    class-specific parts). :math:`b_t \in [0, 1]` is the fraction of the
    snippet inside instance :math:`i` (amplitude :math:`a_i`, faint for 15%
    of instances), :math:`s_t, e_t` ramp down over the first / last quarter
    of the instance (0.25-1.5 s), :math:`u_t` is the relative position,
    :math:`r_t` ramps over the 2 s before / after an instance (preparation,
    appearance without motion), :math:`\lambda = 0.35` leaks the video's
    classes' appearance into its background (action-context confusion),
    :math:`\beta_t` are background motion bursts (half of them also carry a
    class motion: hard negatives), :math:`\epsilon, \eta` are AR(1)
    processes (temporally correlated noise, partly inside the class
    subspace) and :math:`\xi` white noise. RGB thus carries scene, appearance
    and context, Flow carries motion and boundary phases; no single
    direction or threshold separates actions from background.

    **Proposals** (SSN list per subset): 8 jittered copies of each GT (centre
    :math:`\pm 0.25 L`, log-length :math:`\pm 0.35`; 10% of instances missed),
    randomly thinned multi-scale sliding windows (1-64 s) and random
    segments, about 1.5 per second of video in addition to the jittered ones.

    Files, written into a temporary folder and renamed into place::

        <root>/synthetic-<hash>/annotations.json   ActivityNet JSON (Validation/Test)
                                classes.txt        one class name a line
                                features/<vid>.npy [T, D] float32, RGB first
                                proposals/<subset>_proposal_list.txt  (SSN format)
                                clicks.json        BackTAL background clicks
                                config.json        parameters and seed

    Args:
        root (str or Path): Parent folder.
        size (str or dict, optional): :obj:`"small"` (24 + 16 short videos,
            :math:`D = 64`), :obj:`"medium"` (100 + 100, :math:`D = 128`),
            :obj:`"full"` (200 + 212, :math:`D = 2048`) or a dict overriding
            :data:`DEFAULTS`. (default: :obj:`"small"`)
        seed (int, optional): Seed; the data is a deterministic function of
            it and the parameters. (default: :obj:`0`)
        force (bool, optional): Regenerate even when present.

    Returns:
        SyntheticFiles: Paths of the generated files.
    """
    cfg = synthetic_config(size)
    root = Path(root)
    folder = root / f"synthetic-{_config_hash(cfg, seed)}"
    files = _files(folder, cfg)
    if folder.is_dir() and (folder / "config.json").is_file() and not force:
        stored = json.loads((folder / "config.json").read_text())
        if stored.get("config") == json.loads(json.dumps(cfg)) and stored.get("seed") == seed:
            return files
    _publish(root, folder, lambda tmp: _write(tmp, cfg, seed))
    return files


def _publish(root: Path, folder: Path, write: Callable[[Path], None]) -> None:
    # Writes a dataset into a temporary folder under root, then renames it to folder:
    # an interrupted run leaves nothing half-written.
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root))
    try:
        write(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _scene_groups(labels: list[np.ndarray], C: int, group_sizes: tuple[int, ...],
                  rng: np.random.Generator) -> np.ndarray:
    # Scene group of each class for annotation-file timings: classes that share at least
    # two videos (CricketBowling / CricketShot, CliffDiving / Diving in THUMOS14) are kept
    # in one group (connected components); the components go, largest first, to the group
    # of group_sizes with the most room left, the other classes fill the rest at random.
    # When the components do not fit (or group_sizes does not sum to C), each component
    # is a group of its own.
    pair = np.zeros((C, C), np.int64)
    for lab in labels:
        u = np.unique(lab)
        pair[np.ix_(u, u)] += 1
    parent = list(range(C))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(pair, 1) >= 2)):
        parent[find(int(i))] = find(int(j))
    comps: dict[int, list[int]] = {}
    for c in range(C):
        comps.setdefault(find(c), []).append(c)
    multi = sorted((m for m in comps.values() if len(m) > 1), key=len, reverse=True)
    single = [m[0] for m in comps.values() if len(m) == 1]
    group_of = np.full(C, -1, np.int64)
    room = np.array(group_sizes, np.int64)
    if int(room.sum()) == C:
        for m in multi:
            g = int(room.argmax())
            if room[g] < len(m):
                break
            group_of[m] = g
            room[g] -= len(m)
        else:
            slots = np.repeat(np.arange(len(room)), room)
            group_of[np.array(single, np.int64)] = slots[rng.permutation(len(slots))]
            return group_of
    for g, m in enumerate(multi + [[c] for c in single]):
        group_of[m] = g
    return group_of


def _annotations_from_file(videos: Mapping[str, VideoAnnotation], classes: list[str],
                           cfg: Mapping[str, Any], rng: np.random.Generator
                           ) -> dict[str, Any]:
    # The generator's annotation arrays (see _sample_annotations) for given timings:
    # instances sorted by (video, start), clipped to [0, duration]; c1 / c2 = the video's
    # most / second most frequent class (c2 = c1 with one class; a video without
    # instances gets a random context class).
    index = {c: i for i, c in enumerate(classes)}
    C, V = len(classes), len(videos)
    dur, fps, c1, c2, n = (np.zeros(V), np.zeros(V), np.zeros(V, np.int64),
                           np.zeros(V, np.int64), np.zeros(V, np.int64))
    vid, cls, start, end, labels = [], [], [], [], []
    for v, a in enumerate(videos.values()):
        dur[v], fps[v] = float(a.duration), float(a.fps)
        keep = [i for i, lab in enumerate(a.labels) if lab in index]
        lab = np.array([index[a.labels[i]] for i in keep], np.int64)
        seg = np.clip(a.segments[keep].reshape(-1, 2), 0.0, dur[v])
        ok = seg[:, 1] > seg[:, 0]
        seg, lab = seg[ok], lab[ok]
        order = np.lexsort((seg[:, 1], seg[:, 0]))
        seg, lab = seg[order], lab[order]
        labels.append(lab)
        n[v] = len(lab)
        if len(lab):
            counts = np.bincount(lab, minlength=C)
            ranked = np.argsort(-counts, kind="stable")
            c1[v] = ranked[0]
            c2[v] = ranked[1] if counts[ranked[1]] > 0 else ranked[0]
        else:
            c1[v] = c2[v] = rng.integers(C)
        vid.append(np.full(len(lab), v, np.int64))
        cls.append(lab)
        start.append(seg[:, 0])
        end.append(seg[:, 1])
    vid_a = np.concatenate(vid) if vid else np.zeros(0, np.int64)
    group_of = _scene_groups(labels, C, tuple(cfg["group_sizes"]), rng)
    amp = np.exp(0.3 * rng.standard_normal(len(vid_a)))
    amp = np.where(rng.random(len(vid_a)) < cfg["weak_instance_prob"], 0.4 * amp, amp)
    return dict(V=V, C=C, group_of=group_of, dur=dur, fps=fps, c1=c1, c2=c2, n=n, vid=vid_a,
                cls=np.concatenate(cls), start=np.concatenate(start), end=np.concatenate(end),
                amp=amp)


def generate_synthetic_features(
    annotations: str | os.PathLike,
    root: str | os.PathLike,
    size: str | Mapping[str, Any] = "full",
    seed: int = 0,
    force: bool = False,
) -> SyntheticFiles:
    r"""SyntheticTAL features for the videos and timings of an existing
    ActivityNet-style annotation file (e.g. THUMOS14's real ground truth), in
    the standard on-disk layout, so that a method can be run on real action
    timings (overlapping classes, real durations, frame rates and instance
    counts) through the same readers and command line as real features::

        <root>/synthetic-<hash>/features/<video_id>.npy  [T, D] float32, RGB first
                                clicks.json        BackTAL background clicks
                                proposals/<subset>_proposal_list.txt  (SSN format)
                                classes.txt, config.json

    The annotation file is read, never copied: point ``data.annotations`` at
    it, e.g. ``tagraph train --config mil/thumos14 --set data.root=<folder>
    --set data.annotations=/data/thumos14.json --set data.features=features
    --set data.feature_stride=16 --set data.clicks=clicks.json``.

    The generative model is :func:`generate_synthetic_tal`'s, with its sampled
    durations, classes and instances replaced by the file's: every video's
    duration and frame rate (both required), its instances (clipped to
    :math:`[0, \mathrm{duration}]`; labels outside the classes, e.g.
    ``Ambiguous``, are ignored), its primary and second class (the two most
    frequent). Classes that share at least two videos are put in one scene
    group; the other classes fill :obj:`group_sizes` at random. Instances
    may overlap (CliffDiving inside Diving): each snippet shows the instance
    that covers most of it. The size fields that describe the timings
    (:obj:`num_train`, :obj:`num_test`, :obj:`num_classes`, durations,
    lengths, coverage) are not used; the feature geometry (:obj:`feature_dim`,
    :obj:`stride`, :obj:`window`, :obj:`nonnegative`, :obj:`feature_scale`,
    noise) and the feature strengths are.

    Args:
        annotations (str or Path): ActivityNet-style JSON.
        root (str or Path): Parent folder.
        size (str or dict, optional): As in :func:`generate_synthetic_tal`,
            e.g. ``{**SYNTHETIC_VARIANTS["i3d512"]}``. (default: :obj:`"full"`)
        seed (int, optional): Seed. (default: :obj:`0`)
        force (bool, optional): Regenerate even when present.

    Returns:
        SyntheticFiles: Paths; :obj:`annotation_file` is :obj:`annotations`.

    Raises:
        ValueError: A video without a duration or frame rate (naming the file and
            the video), or a file without labelled instances.
    """
    from tagraph.io import load_annotations

    ann_path = Path(annotations).resolve()
    videos = load_annotations(ann_path)
    for vid, a in videos.items():
        for field_ in ("duration", "fps"):
            value = getattr(a, field_)
            if value is None or not value > 0:
                raise ValueError(f"{ann_path}: video '{vid}': field '{field_}' is required "
                                 f"(a positive number) to synthesise its features, got {value!r}")
    classes = sorted({lab for a in videos.values() for lab in a.labels
                      if lab.lower() != "ambiguous"})
    if not classes:
        raise ValueError(f"{ann_path}: no labelled instances to synthesise features for")
    cfg = synthetic_config(size)
    cfg["num_classes"] = len(classes)
    st = ann_path.stat()
    key = dict(cfg, annotations=str(ann_path), annotations_size=st.st_size,
               annotations_mtime_ns=st.st_mtime_ns)
    root = Path(root)
    folder = root / f"synthetic-{_config_hash(key, seed)}"
    files = SyntheticFiles(
        folder=folder, annotation_file=ann_path, feature_dir=folder / "features",
        classes_file=folder / "classes.txt",
        proposal_files={s: folder / "proposals" / f"{s.lower()}_proposal_list.txt"
                        for s in dict.fromkeys(a.subset or "" for a in videos.values())},
        clicks_file=folder / "clicks.json", config=dict(cfg))
    if folder.is_dir() and (folder / "config.json").is_file() and not force:
        files.config = json.loads((folder / "config.json").read_text())["config"]
        return files
    ann = _annotations_from_file(videos, classes, cfg, np.random.default_rng([seed, 0]))
    # the scene groups actually used (components of their own when they did not fit)
    used = dict(cfg, group_sizes=tuple(int(g) for g in np.bincount(ann["group_of"])))
    files.config = json.loads(json.dumps(dict(key, group_sizes=used["group_sizes"])))
    ids = list(videos)
    subsets = [videos[v].subset or "" for v in ids]

    def write(tmp: Path) -> None:
        _write_videos(tmp, used, seed, ann, ids, subsets, classes)
        _write_config(tmp, files.config, seed)

    _publish(root, folder, write)
    return files


def _files(folder: Path, cfg: Mapping[str, Any]) -> SyntheticFiles:
    return SyntheticFiles(
        folder=folder,
        annotation_file=folder / "annotations.json",
        feature_dir=folder / "features",
        classes_file=folder / "classes.txt",
        proposal_files={"Validation": folder / "proposals" / "validation_proposal_list.txt",
                        "Test": folder / "proposals" / "test_proposal_list.txt"},
        clicks_file=folder / "clicks.json",
        config=dict(cfg),
    )


def _write(folder: Path, cfg: Mapping[str, Any], seed: int) -> None:
    rng = np.random.default_rng([seed, 0])
    ann = _sample_annotations(cfg, rng)
    classes = [f"action_{c:02d}" for c in range(ann["C"])]
    subsets = ["Validation"] * cfg["num_train"] + ["Test"] * cfg["num_test"]
    ids = [f"synthetic_{s.lower()}_{i:07d}" for i, s in enumerate(subsets)]
    annotations = _write_videos(folder, cfg, seed, ann, ids, subsets, classes)
    save_annotations(folder / "annotations.json", annotations,
                     version=f"SyntheticTAL-{_GENERATOR_VERSION}")
    _write_config(folder, cfg, seed)


def _write_config(folder: Path, cfg: Mapping[str, Any], seed: int) -> None:
    atomic_write(folder / "config.json", json.dumps(
        {"config": cfg, "seed": seed, "generator_version": _GENERATOR_VERSION,
         "tagraph_version": tagraph.__version__}, indent=1, default=list))


def _write_videos(folder: Path, cfg: Mapping[str, Any], seed: int, ann: Mapping[str, Any],
                  ids: list[str], subsets: list[str], classes: list[str]
                  ) -> dict[str, VideoAnnotation]:
    # Features, SSN proposal lists, background clicks and classes.txt of the videos of
    # `ann`; returns their ground truth (the caller decides whether to write it).
    V, C = ann["V"], ann["C"]
    BR, BF = _bases(cfg, ann, np.random.default_rng([seed, 1]))
    T, soff, R, F = _features(cfg, ann, np.random.default_rng([seed, 2]))
    (folder / "features").mkdir()
    (folder / "proposals").mkdir()
    dtype = np.dtype(cfg["dtype"])
    d = cfg["feature_dim"] // 2
    BR32, BF32 = BR.astype(np.float32), BF.astype(np.float32)
    inst_off = np.concatenate([[0], np.cumsum(ann["n"])])
    annotations: dict[str, VideoAnnotation] = {}
    plists: dict[str, list[ProposalList]] = {s: [] for s in dict.fromkeys(subsets)}
    clicks = {}
    brng = np.random.default_rng([seed, 5])
    scale = np.float32(cfg["white_noise"] * cfg["noise_scale"] / math.sqrt(2))
    bank1 = brng.standard_normal((_BANK, 2 * d), np.float32) * scale
    bank2 = brng.standard_normal((_BANK, 2 * d), np.float32) * scale
    nonneg, fscale = cfg["nonnegative"], np.float32(cfg["feature_scale"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-video tIoU matrices: threads only add overhead
    try:
        for v in range(V):  # one file per video; each step is vectorised over snippets
            a, b = soff[v], soff[v + 1]
            x = np.concatenate([R[a:b].astype(np.float32) @ BR32,
                                F[a:b].astype(np.float32) @ BF32], axis=1)
            # white noise: sum of one random row of each of two Gaussian banks (exactly
            # Gaussian per snippet, ~1e8 distinct pairs; far cheaper than fresh draws)
            ij = np.random.default_rng([seed, 3, v]).integers(0, len(bank1), (2, b - a))
            x += bank1[ij[0]]
            x += bank2[ij[1]]
            if nonneg == "relu":
                np.maximum(x, 0, out=x)
            elif nonneg == "softplus":
                np.logaddexp(np.float32(0), x, out=x)
            if fscale != 1.0:
                x *= fscale
            np.save(folder / "features" / f"{ids[v]}.npy", x.astype(dtype, copy=False))
            i0, i1 = inst_off[v], inst_off[v + 1]
            seg = np.stack([ann["start"][i0:i1], ann["end"][i0:i1]], 1)
            lab = ann["cls"][i0:i1]
            dur, fps = float(ann["dur"][v]), float(ann["fps"][v])
            annotations[ids[v]] = VideoAnnotation(ids[v], subsets[v], dur, fps, seg,
                                                  [classes[c] for c in lab.tolist()])
            props = _proposals(cfg, ann, v, np.random.default_rng([seed, 4, v]))
            plists[subsets[v]].append(ProposalList.from_segments(
                ids[v], props, seg, lab, fps, int(round(dur * fps))))
            clicks[ids[v]] = simulate_clicks(seg, lab, dur, C, video_rng(seed, ids[v]))
    finally:
        torch.set_num_threads(threads)
    atomic_write(folder / "classes.txt", "\n".join(classes) + "\n")
    for subset, plist in plists.items():
        write_ssn_proposals(folder / "proposals" / f"{subset.lower()}_proposal_list.txt", plist)
    write_clicks(folder / "clicks.json", clicks, classes)
    return annotations


_SYN_SUBSETS = {"train": "Validation", "validation": "Validation", "val": "Validation",
                "test": "Test"}


class SyntheticTAL(TALDataset):
    r"""The embedded synthetic temporal action localization dataset: THUMOS14-
    like statistics, no download, deterministic from :obj:`seed`.

    On first use it generates its files under :obj:`root/raw/` with
    :func:`generate_synthetic_tal` (whose docstring describes the generative
    model; summary: 20 classes in scene groups, about 15 instances per video
    (median 8-9, heavy tail), actions of about 4 s (median 3 s, 0.2-120 s)
    covering about 29% of videos of about 210 s at 30 fps; RGB carries scene,
    class appearance and context, Flow carries motion and start / end phases;
    AR(1) noise, context leaking into background and hard-negative motion
    bursts keep it from being separable by a threshold), in the same layout
    as real THUMOS14 features, then reads them with :class:`TALDataset`.
    Generation is cached by its parameters and seed.

    .. code-block:: python

        from tagraph.data import SyntheticTAL

        train = SyntheticTAL("data/synthetic", size="small", subset="train")
        test = SyntheticTAL("data/synthetic", size="small", subset="test",
                            graph="proposal")  # nodes = its SSN proposals

    Args:
        root (str or Path): Folder for the generated and processed files.
        size (str or dict, optional): :obj:`"small"` (24 + 16 short videos,
            :math:`D = 64`), :obj:`"medium"` (100 + 100, :math:`D = 128`),
            :obj:`"full"` (200 + 212, :math:`D = 2048`), or a dict overriding
            parameters of :data:`tagraph.data.synthetic.DEFAULTS`.
            (default: :obj:`"small"`)
        seed (int, optional): Seed of the generator. (default: :obj:`0`)
        subset (str, optional): :obj:`"Validation"` (training, alias
            :obj:`"train"`) or :obj:`"Test"` (alias :obj:`"test"`).
            (default: :obj:`"Validation"`)
        graph (str, optional): As in :class:`TALDataset`; with
            :obj:`"proposal"`, proposals default to the generated SSN list of
            the subset. (default: :obj:`"snippet"`)
        clicks (str, optional): As in :class:`TALDataset`, or :obj:`"file"` for
            the generated BackTAL click file. (default: :obj:`None`)
        **kwargs (optional): Further :class:`TALDataset` arguments
            (:obj:`modality`, :obj:`max_snippets`, :obj:`graph_kwargs`, ...).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: str | Mapping[str, Any] = "small",
        seed: int = 0,
        subset: str = "Validation",
        graph: str | None = "snippet",
        clicks: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        self.files = generate_synthetic_tal(Path(root) / "raw", size, seed)
        cfg = self.files.config
        subset = _SYN_SUBSETS.get(subset.lower(), subset)
        if subset not in self.files.proposal_files:
            raise ValueError(f"subset must be 'Validation' / 'train' or 'Test' / 'test', "
                             f"got {subset!r}")
        if graph == "proposal":
            kwargs.setdefault("proposals", self.files.proposal_files[subset])
        if clicks == "file":
            clicks = self.files.clicks_file
        self.size, self.seed = size, seed
        super().__init__(
            root,
            annotation_file=self.files.annotation_file,
            feature_dir=self.files.feature_dir,
            subset=subset,
            graph=graph,
            classes=self.files.classes_file,
            stride=cfg["stride"],
            window=cfg["window"],
            clicks=clicks,
            **kwargs,
        )

    def __repr__(self) -> str:
        size = self.size if isinstance(self.size, str) else "custom"
        return (f"{type(self).__name__}({len(self)}, size={size!r}, seed={self.seed}, "
                f"subset={self.subset!r}, graph={self.graph!r}, modality={self.modality!r})")
