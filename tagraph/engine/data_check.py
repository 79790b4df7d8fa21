r"""``tagraph data check``: what a config's dataset holds, and what training
would reject, in seconds (feature files are opened for their shape only).

:func:`check_data` resolves the config's layout (:mod:`tagraph.engine.data_config`)
and reports, per subset: videos, feature files found / missing, their shape
and dtype, the feature stride implied by :math:`T` and the duration (against
the configured one: a warning past 10 %), ground-truth segments outside the
video, classes and instance counts, and the coverage of proposals (P-GCN) and
clicks (BackTAL). :func:`tagraph.engine.runner.train` runs the same checks
before it writes anything.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SubsetCheck", "DataCheck", "check_data", "STRIDE_TOLERANCE"]

#: Relative difference between the implied and the configured stride that warns.
STRIDE_TOLERANCE = 0.10


@dataclass
class SubsetCheck:
    r"""What one subset holds (see :func:`check_data`)."""

    role: str
    name: str
    videos: int = 0
    features_found: int = 0
    missing: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    dims: Counter = field(default_factory=Counter)
    dtypes: Counter = field(default_factory=Counter)
    implied_strides: list[float] = field(default_factory=list)
    segments: int = 0
    outside: int = 0
    outside_dropped: int = 0  # of those, wholly outside: dropped by the reader
    instances: Counter = field(default_factory=Counter)
    proposals: int | None = None
    clicks: int | None = None

    def row(self) -> list[str]:
        t = np.asarray(self.lengths) if self.lengths else None
        s = np.asarray(self.implied_strides) if self.implied_strides else None
        return [f"{self.role} ({self.name})", str(self.videos),
                f"{self.features_found}/{self.videos}",
                "-" if t is None else f"{t.min()}/{int(np.median(t))}/{t.max()}",
                "/".join(str(d) for d in sorted(self.dims)) or "-",
                "/".join(sorted(self.dtypes)) or "-",
                "-" if s is None else f"{np.median(s):.2f}",
                str(self.segments), str(self.outside),
                "-" if self.proposals is None else f"{self.proposals}/{self.videos}",
                "-" if self.clicks is None else f"{self.clicks}/{self.videos}"]


@dataclass
class DataCheck:
    r"""The result of :func:`check_data`: a header, one :class:`SubsetCheck`
    per subset, the class list, and the errors (what training would reject)
    and warnings found."""

    header: list[str]
    subsets: list[SubsetCheck]
    classes: list[str]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        r"""No error (warnings allowed)."""
        return not self.errors

    def problems(self) -> list[str]:
        r"""``ERROR: ...`` and ``WARNING: ...`` lines."""
        return [f"ERROR: {e}" for e in self.errors] + [f"WARNING: {w}" for w in self.warnings]

    def table(self, problems: bool = True) -> str:
        r"""The report as text (header, subset table, classes, with
        :obj:`problems` the errors and warnings, and a verdict)."""
        heads = ["subset", "videos", "features", "T min/med/max", "D", "dtype",
                 "implied stride", "GT segments", "outside video", "proposals", "clicks"]
        rows = [heads] + [s.row() for s in self.subsets]
        widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
        lines = list(self.header)
        for j, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.classes:
            counts = ["/".join(str(s.instances.get(c, 0)) for s in self.subsets)
                      for c in self.classes]
            roles = "/".join(s.role for s in self.subsets)
            import textwrap

            text = f"classes: {len(self.classes)} (instances {roles}): " + ", ".join(
                f"{c} {n}" for c, n in zip(self.classes, counts))
            lines += textwrap.wrap(text, 100, subsequent_indent="  ", break_on_hyphens=False)
        if problems:
            lines += self.problems()
        lines.append("OK: training would accept this data" if self.ok else
                     f"{len(self.errors)} error(s): training would stop")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        r"""Every figure, for ``--json``."""
        return {"header": self.header, "ok": self.ok, "errors": self.errors,
                "warnings": self.warnings, "classes": self.classes,
                "subsets": [{"role": s.role, "name": s.name, "videos": s.videos,
                             "features_found": s.features_found, "missing": s.missing,
                             "snippets": s.lengths and [int(min(s.lengths)),
                                                        int(np.median(s.lengths)),
                                                        int(max(s.lengths))],
                             "dims": sorted(s.dims), "dtypes": sorted(s.dtypes),
                             "implied_stride": float(np.median(s.implied_strides))
                             if s.implied_strides else None,
                             "segments": s.segments, "outside": s.outside,
                             "outside_dropped": s.outside_dropped,
                             "instances": dict(s.instances), "proposals": s.proposals,
                             "clicks": s.clicks} for s in self.subsets]}


def _shape(paths: list[Path]) -> tuple[int, int, str]:
    """:obj:`(T, D, dtype)` of a video's feature file(s), reading headers only."""
    shapes, dtypes = [], []
    for p in paths:
        if p.suffix == ".npy":
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
            shapes.append(arr.shape)
            dtypes.append(str(arr.dtype))
        else:
            import torch

            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, Mapping) and len(obj) == 1:
                obj = next(iter(obj.values()))
            shapes.append(tuple(obj.shape))
            dtypes.append(str(obj.dtype).replace("torch.", ""))
    if any(len(s) != 2 for s in shapes):
        raise ValueError(f"expected a [T, D] array, got shape {shapes[0]}")
    if len({s[0] for s in shapes}) > 1:
        raise ValueError(f"streams differ in length: {[s[0] for s in shapes]}")
    return shapes[0][0], sum(s[1] for s in shapes), "+".join(sorted(set(dtypes)))


def _synthetic_layout(cfg: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    from tagraph.data.synthetic import generate_synthetic_tal
    from tagraph.engine.data_config import DataLayout
    from tagraph.engine.runner import synthetic_size

    d = cfg["data"]
    root = Path(str(d.get("root", "data/synthetic"))).expanduser()
    files = generate_synthetic_tal(root / "raw", synthetic_size(d), int(d.get("data_seed", 0)))
    c = files.config
    layout = DataLayout("synthetic", root, files.annotation_file, files.feature_dir, None,
                        float(c["stride"]), float(c["window"]), None,
                        {"train": "Validation", "val": "Validation", "test": "Test"},
                        {"proposals_train": files.proposal_files["Validation"],
                         "proposals_test": files.proposal_files["Test"]},
                        None)
    return layout, {"classes_file": files.classes_file}


def check_data(cfg: Mapping[str, Any], *, need_train: bool = True) -> DataCheck:
    r"""Checks the files a config's dataset reads (see the module docstring).

    Args:
        cfg (Mapping): A resolved config (``method`` and ``[data]``).
        need_train (bool, optional): Check the training subset too.
            (default: :obj:`True`)

    Returns:
        DataCheck: The report; :attr:`DataCheck.ok` is :obj:`False` when
        training would reject the data.
    """
    from tagraph.data.clicks import read_clicks
    from tagraph.data.dataset import read_classes, select_subset
    from tagraph.data.features import FeatureFolder
    from tagraph.data.proposal_io import read_bsn_folder, read_ssn_proposals
    from tagraph.engine.data_config import data_layout
    from tagraph.engine.runner import METHODS
    from tagraph.io import load_annotations

    d = cfg["data"]
    spec = METHODS.get(cfg.get("method"))
    name = d.get("dataset")
    extra: dict[str, Any] = {}
    if name == "synthetic":
        layout, extra = _synthetic_layout(cfg)
    elif name == "wtalc_thumos14":
        raise ValueError("tagraph data check reads ActivityNet-JSON datasets; the W-TALC "
                         "numpy release (data.dataset = 'wtalc_thumos14') is checked when "
                         "it is loaded")
    else:
        layout = data_layout(d)
    header = [f"data check: method '{cfg.get('method')}', dataset '{name}', root {layout.root}",
              f"  annotations  {layout.annotations}",
              f"  features     {layout.features}  (pattern "
              f"{layout.feature_pattern or 'search: <id>.npy, rgb/ + flow/, <id>_rgb.npy'}; "
              f"stride {layout.stride:g}, window {layout.window:g} frames"
              f"{f', fps {layout.fps:g} where the JSON has none' if layout.fps else ''})"]
    report = DataCheck(header, [], [])
    if not layout.annotations.is_file():
        report.errors.append(f"{layout.annotations}: annotation file not found (data.annotations)")
        return report
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            everything = load_annotations(layout.annotations)
    except ValueError as e:
        report.errors.append(str(e))
        return report
    classes_file = extra.get("classes_file") or layout.classes
    if classes_file:
        try:
            classes = read_classes(classes_file)
        except (ValueError, OSError) as e:
            report.errors.append(f"{e} (data.classes)")
            return report
    else:
        classes = sorted({lab for a in everything.values() for lab in a.labels})
    report.classes = classes
    present = Counter(str(a.subset) for a in everything.values())
    report.header.append("  subsets in the file: " + ", ".join(
        f"{k} {v}" for k, v in sorted(present.items())))
    if not layout.features.is_dir():
        report.errors.append(f"{layout.features}: feature folder not found (data.features)")
    folder = FeatureFolder(layout.features, d.get("modality", "both"), "",
                           layout.feature_pattern)
    roles = [("train", d.get("train_subset", "train"))] if need_train else []
    roles.append(("test", d.get("test_subset", "test")))
    dims_all: Counter = Counter()
    dims_first: dict[int, tuple[Path, str]] = {}  # an example file per dimension
    for role, subset in roles:
        anns = select_subset(everything, str(subset), layout.subset_aliases)
        resolved = next(iter(anns.values())).subset if anns else subset
        sc = SubsetCheck(role, str(resolved), videos=len(anns))
        report.subsets.append(sc)
        if not anns:
            report.errors.append(f"{layout.annotations}: no video in subset '{subset}' "
                                 f"(data.{role}_subset; subsets: {sorted(present)})")
            continue
        for vid, a in anns.items():
            where = f"{layout.annotations}: video '{vid}'"
            fps = a.fps or layout.fps
            if not a.duration or a.duration <= 0:
                report.errors.append(f"{where}: field 'duration' missing or not positive")
                continue
            if not fps:
                report.errors.append(f"{where}: field 'fps' missing and data.fps is 0")
                continue
            sc.segments += len(a.segments)
            sc.instances.update(a.labels)
            seg = a.segments
            if len(seg):
                sc.outside += int(((seg[:, 0] < -1e-2) | (seg[:, 1] > a.duration + 1e-2)).sum())
                sc.outside_dropped += int(((seg[:, 1] <= 0) | (seg[:, 0] >= a.duration)).sum())
            if not layout.features.is_dir():
                continue
            try:
                _, paths = folder.files(vid)
                T, D, dtype = _shape(paths)
            except FileNotFoundError:
                sc.missing.append(vid)
                continue
            except (ValueError, OSError, RuntimeError) as e:
                report.errors.append(f"{paths[0]}: video '{vid}': field 'features': {e}")
                continue
            sc.features_found += 1
            sc.lengths.append(int(T))
            sc.dims[int(D)] += 1
            dims_all[int(D)] += 1
            dims_first.setdefault(int(D), (paths[0], vid))
            sc.dtypes[dtype] += 1
            if T == 0:
                report.errors.append(f"{paths[0]}: video '{vid}': field 'features': 0 snippets")
            if not (dtype.startswith("float") or dtype.startswith("bfloat")):
                report.errors.append(f"{paths[0]}: video '{vid}': field 'features': dtype "
                                     f"{dtype}, expected floating point")
            if T >= 8:
                sc.implied_strides.append((a.duration * fps - layout.window) / (T - 1))
        if sc.missing:
            report.errors.append(
                f"{layout.features}: {len(sc.missing)} of the {sc.videos} {role} videos have "
                f"no feature file (data.features / data.feature_pattern), e.g. "
                f"{', '.join(sc.missing[:3])}")
        if sc.implied_strides:
            implied = float(np.median(sc.implied_strides))
            if abs(implied - layout.stride) > STRIDE_TOLERANCE * layout.stride:
                report.warnings.append(
                    f"{role} features: T and the durations imply a stride of {implied:.2f} "
                    f"frames, not the configured {layout.stride:g} (data.feature_stride; "
                    f"off by {abs(implied / layout.stride - 1):.0%}): snippet times would be "
                    "wrong")
        if sc.outside:
            gone = (f" ({sc.outside_dropped} lie wholly outside and are dropped)"
                    if sc.outside_dropped else "")
            report.warnings.append(f"{layout.annotations}: {sc.outside} {role} ground-truth "
                                   "segment(s) reach outside [0, duration]; they are clipped to "
                                   f"it{gone}")
        if spec is not None and spec.graph == "proposal" and name != "synthetic":
            key_p = f"proposals_{role}"
            src = layout.proposals.get(key_p)
            if src is None:
                report.errors.append(f"method '{spec.name}' needs data.{key_p}")
            elif not Path(src).exists():
                report.errors.append(f"{src}: proposal file not found (data.{key_p})")
            else:
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        if Path(src).is_dir():
                            found = read_bsn_folder(src, {v: a.duration
                                                          for v, a in anns.items()})
                        else:
                            fpss = {v: (a.fps or layout.fps or 0.0) for v, a in anns.items()}
                            found = read_ssn_proposals(src, fpss, len(classes), keep=fpss)
                    report.warnings += [str(w.message) for w in caught]
                    sc.proposals = sum(1 for v in anns if v in found)
                    if sc.proposals < sc.videos:
                        miss = [v for v in anns if v not in found]
                        report.errors.append(f"{src}: {len(miss)} {role} videos have no "
                                             f"proposals, e.g. {', '.join(miss[:3])}")
                except (ValueError, OSError) as e:
                    report.errors.append(str(e))
        if spec is not None and spec.clicks and role == "train":
            src = d.get("clicks") or "background"
            if src in ("background", "action", "both"):
                sc.clicks = sc.videos  # simulated for every video
            else:
                src = layout.clicks if layout.clicks is not None else src
                try:
                    clicks = read_clicks(src, classes)
                except (ValueError, OSError) as e:
                    report.errors.append(str(e))
                    continue
                sc.clicks = sum(1 for v in anns if v in clicks)
                miss = [v for v in anns if v not in clicks]
                if miss:
                    report.errors.append(f"{src}: {len(miss)} {role} videos have no clicks "
                                         f"(data.clicks), e.g. {', '.join(miss[:3])}")
                for v, (times, _) in clicks.items():
                    a = anns.get(v)
                    if a is None or not len(times):
                        continue
                    bad = (times < -1.0) | (times > a.duration + 1.0)
                    if bad.any():
                        where = Path(src) / f"{v}.json" if Path(src).is_dir() else src
                        report.errors.append(
                            f"{where}: video '{v}': field 'clicks': time "
                            f"{float(times[bad][0]):g} s is outside [0, {a.duration:g}] s")
    if len(dims_all) > 1:
        common = dims_all.most_common(1)[0][0]
        odd = "; ".join(f"{path}: video '{vid}': field 'features': D={k}"
                        for k, (path, vid) in dims_first.items() if k != common)
        report.errors.append(f"{layout.features}: feature dimensions differ between videos: "
                             + ", ".join(f"D={k} ({v} videos)" for k, v in dims_all.items())
                             + f"; e.g. {odd}")
    return report
