r"""The config-driven runner behind ``tagraph train / predict / evaluate / demo``.

A resolved config (see :mod:`tagraph.engine.config` and the files in
``tagraph/configs/<method>/<dataset>.toml``) names a ``method`` from
:data:`METHODS` and a dataset; :func:`train` builds the datasets, carves a
validation split from the *training* videos (never the test set), builds the
model, optimizer and LR schedule, trains with :class:`~tagraph.engine.Trainer`
(checkpoint picked on validation mAP), then predicts the test subset with the
best checkpoint and writes ``results_test.json`` (ActivityNet format),
``eval_test.json`` and ``config.toml`` beside the checkpoints.

Config sections: ``method``, ``seed``; ``[data]`` (``dataset`` = ``synthetic``,
``thumos14``, ``activitynet13`` or ``wtalc_thumos14``, ``root``, subsets,
``val_fraction``, ``max_snippets`` (deterministic resampling of longer
videos, all subsets; the training videos only with ``resample_eval =
false``), ``crop_snippets`` (fixed-:math:`T` training: a random crop of that
many snippets of every longer training video, drawn anew each epoch; 0 =
whole videos), ...), ``[data.graph]`` (graph-builder arguments),
``[data.synthetic]`` (:class:`~tagraph.data.SyntheticTAL` overrides),
``[model]`` (constructor arguments), ``[optim]``, ``[schedule]``,
``[train]``, ``[predict]``, ``[eval]``. TOML has no null: ``0`` / ``""``
mean "not set" where documented.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from tagraph.engine.config import dumps_toml
from tagraph.engine.distributed import barrier, dist_info, init_distributed
from tagraph.engine.trainer import (
    CheckpointError,
    Trainer,
    check_checkpoint_method,
    load_checkpoint,
    load_model_weights,
    move_to_device,
    read_checkpoint,
)
from tagraph.evaluation import detection_map
from tagraph.io import Detections, VideoAnnotation, atomic_write, load_annotations, save_results

__all__ = [
    "MethodSpec",
    "METHODS",
    "register_method",
    "DatasetNotFoundError",
    "RunData",
    "load_data",
    "with_random_crop",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "predict",
    "score",
    "CoverageReport",
    "EmptyPredictionsWarning",
    "coverage_report",
    "coverage_warning",
    "train",
    "predict_checkpoint",
    "resolve_device",
    "write_config",
]

_LOG = logging.getLogger("tagraph.engine")
# A library logs, the application shows: without a handler of the user's, records are not
# printed by logging's last-resort handler (warnings still reach the user as Python warnings).
_LOG.addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- methods
@dataclass
class MethodSpec:
    r"""How the runner drives one method.

    Args:
        name (str): Registry key (the config's ``method``).
        graph (str or None): Graph kind of its dataset items
            (:obj:`"proposal"`, :obj:`"snippet"` or :obj:`None` for the snippet
            sequence only).
        build (Callable): ``build(cfg, in_channels, num_classes) -> nn.Module``
            from the config's ``[model]`` table.
        supervision (str): What it trains from (for messages).
        clicks (bool): Whether the training set carries clicks.
        model_class (type or str, optional): The model class (or its name in
            :mod:`tagraph.models`) whose constructor arguments are the valid
            ``[model]`` keys; :obj:`None` skips that check.
    """

    name: str
    graph: str | None
    build: Callable[[Mapping[str, Any], int, int], nn.Module]
    supervision: str
    clicks: bool = False
    model_class: type | str | None = None


METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    r"""Adds :obj:`spec` to :data:`METHODS` (replacing one of the same name)."""
    METHODS[spec.name] = spec
    return spec


def _kw(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.get("model", {}).items()
            if k != "detection"}


def _build_mil(cfg: Mapping[str, Any], d: int, c: int) -> nn.Module:
    from tagraph.models import MIL

    return MIL(d, c, **_kw(cfg))


def _build_pgcn(cfg: Mapping[str, Any], d: int, c: int) -> nn.Module:
    from tagraph.models import PGCN

    return PGCN(d, c, **_kw(cfg))


def _build_grn(cfg: Mapping[str, Any], d: int, c: int) -> nn.Module:
    from tagraph.models import GRN

    return GRN(d, c, **_kw(cfg))


def _build_ecm(cfg: Mapping[str, Any], d: int, c: int) -> nn.Module:
    from tagraph.models import ECM

    return ECM(d, c, **_kw(cfg))


def _build_backtal(cfg: Mapping[str, Any], d: int, c: int) -> nn.Module:
    from tagraph.models import BackTAL

    return BackTAL(d, c, **_kw(cfg))


def _build_issf(cfg: Mapping[str, Any], d: int, c: int) -> nn.Module:
    from tagraph.models import ISSF

    return ISSF(d, c, **_kw(cfg))


register_method(MethodSpec("pgcn", "proposal", _build_pgcn, "full (segments)",
                            model_class="PGCN"))
register_method(MethodSpec("mil", None, _build_mil, "weak (video labels)",
                            model_class="MIL"))
register_method(MethodSpec("grn", "snippet", _build_grn, "weak (video labels)",
                            model_class="GRN"))
register_method(MethodSpec("ecm", None, _build_ecm, "weak (video labels)",
                            model_class="ECM"))
register_method(MethodSpec("backtal", None, _build_backtal, "background clicks", clicks=True,
                            model_class="BackTAL"))
register_method(MethodSpec("issf", None, _build_issf, "weak (video labels)",
                            model_class="ISSF"))


def _spec(cfg: Mapping[str, Any]) -> MethodSpec:
    name = cfg.get("method")
    if name not in METHODS:
        raise ValueError(f"config 'method' must be one of {sorted(METHODS)}, got {name!r}")
    return METHODS[name]


# --------------------------------------------------------------------------- datasets
class DatasetNotFoundError(FileNotFoundError):
    r"""A dataset's files are not where the config says; the message says
    where to get them and the expected layout."""


_WHERE = {
    "thumos14": (
        "THUMOS14 (I3D features, ActionFormer / OpenTAD release 'thumos.tar.gz', linked from "
        "github.com/happyharrycn/actionformer_release)",
        ["annotations/thumos14.json", "i3d_features/<video_id>.npy   ([T, 2048], RGB then Flow)"],
        "datasets/thumos14/README.md",
    ),
    "activitynet13": (
        "ActivityNet 1.3 (official activity_net.v1-3.min.json + a released feature set, "
        "see the ActionFormer / OpenTAD data pages)",
        ["annotations/anet1.3_i3d_filtered.json",
         "i3d_features/v_<video_id>.npy   ([T, 2048], RGB then Flow)"],
        "datasets/activitynet13/README.md",
    ),
    "wtalc_thumos14": (
        "THUMOS14 in the W-TALC release ('Thumos14reduced', github.com/sujoyp/wtalc-pytorch)",
        ["Thumos14reduced-I3D-JOINTFeatures.npy",
         "Thumos14reduced-Annotations/{classlist,videoname,subset,duration,labels,segments}.npy",
         "Thumos14reduced-Annotations/Ambiguous_test.txt"],
        "datasets/thumos14/README.md",
    ),
}


def _require(dataset: str, root: Path, needed: Sequence[Path]) -> None:
    missing = [p for p in needed if not p.exists()]
    if not missing:
        return
    what, layout, readme = _WHERE[dataset]
    lines = [f"dataset '{dataset}' not found: '{missing[0]}' does not exist.",
             f"Get it from: {what}.", f"Expected layout under data.root = '{root}':"]
    lines += [f"  {root}/{x}" for x in layout]
    lines.append(f"Details: {readme} in the tagraph repository. Point the config at it with "
                 f"--set data.root=/path/to/{dataset}")
    raise DatasetNotFoundError("\n".join(lines))


@dataclass
class RunData:
    r"""Datasets of one run: train / validation (carved from the training
    videos) / test graphs, class names, the ground truth of every video, the
    feature size and (W-TALC) the ambiguous-segment file."""

    train: Sequence[Data]
    val: Sequence[Data]
    test: Sequence[Data]
    classes: list[str]
    gt: dict[str, VideoAnnotation]
    in_channels: int
    ambiguous: str | None = None


def _opt(v: Any) -> Any:
    return None if v in ("", 0, None) else v


def _open_dataset(cfg: Mapping[str, Any], spec: MethodSpec, subset: str, train: bool,
                  whole: bool = False):
    # whole: read the videos at full length (data.max_snippets not applied)
    from tagraph.data import SyntheticTAL, WTALCThumos14

    d = cfg["data"]
    name = d["dataset"]
    root = Path(os.path.expanduser(d["root"]))
    kw: dict[str, Any] = dict(graph=spec.graph, modality=d.get("modality", "both"),
                              max_snippets=None if whole else _opt(d.get("max_snippets")),
                              resample=d.get("resample", "uniform"), log=False,
                              graph_kwargs={k: (tuple(v) if isinstance(v, list) else v)
                                            for k, v in d.get("graph", {}).items()})
    if spec.clicks and train:
        kw["clicks"] = d.get("clicks") or "background"
        kw["click_seed"] = int(d.get("click_seed", 0))
    if spec.graph == "proposal" and train and d.get("gt_as_fg", True):
        # SSN / P-GCN: ground-truth boxes are extra foreground training nodes
        # (removed again from the validation videos' graphs, see load_data)
        kw["graph_kwargs"]["add_gt"] = True
    if name == "synthetic":
        return SyntheticTAL(root, size=synthetic_size(d), seed=int(d.get("data_seed", 0)),
                            subset=subset, **kw)
    if name == "wtalc_thumos14":
        _require(name, root, [root / "Thumos14reduced-I3D-JOINTFeatures.npy",
                              root / "Thumos14reduced-Annotations"])
        return WTALCThumos14(root, subset=subset, **kw)
    from tagraph.data import TALDataset
    from tagraph.engine.data_config import JSON_DATASETS, data_layout

    if name not in JSON_DATASETS:
        raise ValueError(f"data.dataset must be one of synthetic, {', '.join(JSON_DATASETS)}, "
                         f"wtalc_thumos14; got {name!r}")
    layout = data_layout(d)
    _require_layout(name, layout)
    if spec.graph == "proposal":
        key = "proposals_train" if train else "proposals_test"
        if layout.proposals.get(key) is None:
            raise ValueError(f"method '{spec.name}' on '{name}' needs data.{key} (an SSN "
                             "proposal list, a BSN/BMN csv folder)")
        kw["proposals"] = layout.proposals[key]
    if spec.clicks and train and layout.clicks is not None:
        kw["clicks"] = layout.clicks
    return TALDataset(root, subset=subset, **layout.dataset_kwargs(), **kw)


def synthetic_size(d: Mapping[str, Any]) -> Any:
    r"""The :class:`~tagraph.data.SyntheticTAL` size of a ``[data]`` table:
    ``size`` with the ``variant``'s and ``[data.synthetic]``'s fields over it."""
    size: Any = d.get("size", "small")
    extra = dict(d.get("synthetic", {}))
    variant = d.get("variant") or ""
    if variant:
        from tagraph.data.synthetic import SYNTHETIC_VARIANTS

        if variant not in SYNTHETIC_VARIANTS:
            raise ValueError(f"data.variant must be one of {sorted(SYNTHETIC_VARIANTS)} "
                             f"(or \"\" for none), got {variant!r}")
        extra = {**SYNTHETIC_VARIANTS[variant], **extra}
    if extra:
        from tagraph.data.synthetic import SYNTHETIC_SIZES

        base = SYNTHETIC_SIZES[size] if isinstance(size, str) else size
        size = {**base, **{k: tuple(v) if isinstance(v, list) else v
                           for k, v in extra.items()}}
    return size


def _require_layout(name: str, layout: Any) -> None:
    missing = [p for p in (layout.annotations, layout.features) if not p.exists()]
    if not missing:
        return
    if name in _WHERE:
        what, _, readme = _WHERE[name]
        head = [f"dataset '{name}' not found: '{missing[0]}' does not exist.",
                f"Get it from: {what}."]
    else:
        head = [f"dataset '{name}': '{missing[0]}' does not exist."]
        readme = "datasets/README.md"
    pattern = layout.feature_pattern or "<video_id>.npy"
    lines = head + [
        "Expected layout (set each with --set data.KEY=...):",
        f"  data.annotations = {layout.annotations}   (ActivityNet-style JSON)",
        f"  data.features    = {layout.features}   (files {pattern}, [T, D] each)",
        f"Details: {readme} in the tagraph repository; check a folder with "
        "'tagraph data check --config ... --set data.root=/path'."]
    raise DatasetNotFoundError("\n".join(lines))


def _ground_truth(ds: Any) -> dict[str, VideoAnnotation]:
    ann = getattr(ds, "annotation_file", None)
    if ann is not None and Path(ann).is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_annotations(ann)
    # W-TALC: numpy annotations; rebuild the ground truth from the dataset's videos.
    return {v.video_id: VideoAnnotation(
        v.video_id, v.subset, v.duration, v.fps, np.asarray(v.segments, dtype=float).reshape(-1, 2),
        [ds.classes[i] for i in np.asarray(v.labels).tolist()]) for v in ds.videos}


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    r"""Indices ``(train, val)`` of a fixed random split of :obj:`n` training videos."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 training videos to carve a validation split, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(val_fraction * n))))
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def with_random_crop(graphs: Any, length: int) -> Any:
    r"""Fixed-:math:`T` training (``data.crop_snippets``): a shallow copy of
    the training split whose items are drawn through
    :class:`~tagraph.transforms.RandomSnippetCrop` (a new random window of
    :obj:`length` snippets every time a longer video is read; clicks and edges
    follow), composed after the dataset's own :obj:`transform`. Validation and
    test videos stay whole."""
    import copy

    from torch_geometric.transforms import Compose

    from tagraph.transforms import RandomSnippetCrop

    if length < 1:
        raise ValueError(f"data.crop_snippets must be >= 1 (0 = off), got {length}")
    out = copy.copy(graphs)
    out.uncropped = graphs  # whole videos, e.g. for the input statistics
    crop = RandomSnippetCrop(length)
    old = getattr(graphs, "transform", None)
    out.transform = crop if old is None else Compose([old, crop])
    return out


def load_data(cfg: Mapping[str, Any], *, need_train: bool = True,
              check: bool = False) -> RunData:
    r"""Builds the run's datasets from ``cfg["data"]`` (rank 0 first, so the
    processed cache is written once). With :obj:`check`, first runs the
    checks of ``tagraph data check`` (:func:`~tagraph.engine.data_check.check_data`):
    errors raise :class:`ValueError`, warnings are issued as
    :class:`DataCheckWarning`."""
    spec = _spec(cfg)
    if check:
        for message in _check_data_first(cfg, need_train):
            warnings.warn(message, DataCheckWarning, stacklevel=2)
    d = cfg["data"]
    info = dist_info()
    # data.resample_eval = false: max_snippets resamples the training videos only; the
    # validation and test videos are read whole (the validation split from a second,
    # full-length reading of the training subset)
    whole = _opt(d.get("max_snippets")) is not None and not bool(d.get("resample_eval", True))

    def open_all() -> tuple[Any, Any, Any]:
        tr = _open_dataset(cfg, spec, d["train_subset"], True) if need_train else None
        te = _open_dataset(cfg, spec, d["test_subset"], False, whole=whole)
        tv = tr
        if need_train and whole:
            with warnings.catch_warnings():  # the same files: already warned about above
                warnings.simplefilter("ignore")
                tv = _open_dataset(cfg, spec, d["train_subset"], True, whole=True)
        return tr, te, tv

    if info.rank == 0:
        train_ds, test_ds, val_ds = open_all()
    barrier()
    if info.rank != 0:
        train_ds, test_ds, val_ds = open_all()
    gt = _ground_truth(test_ds)
    if train_ds is not None and getattr(train_ds, "annotation_file", None) != getattr(
            test_ds, "annotation_file", None):
        gt = {**_ground_truth(train_ds), **gt}
    train = val = []
    if train_ds is not None:
        tr_idx, val_idx = split_train_val(len(train_ds), float(d.get("val_fraction", 0.2)),
                                          int(d.get("split_seed", 1234)))
        train, val = train_ds[tr_idx], val_ds[val_idx]
        if spec.graph == "proposal":
            from tagraph.data import drop_gt_nodes

            val = [drop_gt_nodes(g) for g in val]
        crop = _opt(d.get("crop_snippets"))
        if crop is not None:
            train = with_random_crop(train, int(crop))
    ambiguous = None
    if d["dataset"] == "wtalc_thumos14":
        amb = Path(d["root"]) / "Thumos14reduced-Annotations" / "Ambiguous_test.txt"
        ambiguous = str(amb) if amb.is_file() else None
    return RunData(train, val, test_ds, list(test_ds.classes), gt, int(test_ds[0].x.size(1)),
                   ambiguous)


# --------------------------------------------------------------------------- model & optim
def build_model(cfg: Mapping[str, Any], in_channels: int, num_classes: int) -> nn.Module:
    r"""The config's model (``method`` + ``[model]`` table). A
    ``[model.detection]`` table overrides fields of a weakly supervised
    model's :class:`~tagraph.ops.CASDetectionConfig` (e.g.
    ``--set model.detection.class_threshold=0.2``)."""
    model = _spec(cfg).build(cfg, in_channels, num_classes)
    det = dict(cfg.get("model", {}).get("detection", {}) or {})
    if det:
        current = getattr(model, "detection_config", None)
        if current is None:
            raise ValueError(f"method '{cfg['method']}' has no [model.detection] settings")
        fields = {f.name for f in dataclasses.fields(current)}
        unknown = sorted(set(det) - fields)
        if unknown:
            raise ValueError(f"unknown key(s) model.detection.{', '.join(unknown)}; valid: "
                             f"{', '.join(sorted(fields))}")
        det = {k: (tuple(v) if isinstance(v, list) else v) for k, v in det.items()}
        model.detection_config = dataclasses.replace(current, **det)
    return model


def build_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    r"""``[optim]``: ``name`` = ``sgd`` / ``adam`` / ``adamw``, ``lr``,
    ``weight_decay``, ``momentum`` (SGD), ``betas`` (Adam)."""
    o = cfg.get("optim", {})
    name = o.get("name", "adam").lower()
    params = [p for p in model.parameters() if p.requires_grad]
    lr, wd = float(o.get("lr", 1e-3)), float(o.get("weight_decay", 0.0))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(o.get("momentum", 0.9)),
                               weight_decay=wd)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=tuple(o.get("betas", (0.9, 0.999))), weight_decay=wd)
    raise ValueError(f"optim.name must be 'sgd', 'adam' or 'adamw', got {name!r}")


def build_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> Any:
    r"""``[schedule]``: ``name`` = ``none``, ``step`` (``step_size``,
    ``gamma``), ``multistep`` (``milestones``, ``gamma``) or ``cosine`` (over
    ``train.epochs``, after ``warmup_epochs`` of linear warm-up); stepped per epoch."""
    s = cfg.get("schedule", {})
    name = s.get("name", "none").lower()
    epochs = int(cfg["train"]["epochs"])
    gamma = float(s.get("gamma", 0.1))
    if name == "none":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, int(s.get("step_size", 15)), gamma)
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(s.get("milestones", [])),
                                                    gamma)
    if name == "cosine":
        warm = int(s.get("warmup_epochs", 0))
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs - warm))
        if warm <= 0:
            return cos
        lin = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0 / (warm + 1), 1.0, warm)
        return torch.optim.lr_scheduler.SequentialLR(optimizer, [lin, cos], [warm])
    raise ValueError(f"schedule.name must be 'none', 'step', 'multistep' or 'cosine', got {name!r}")


def train_loader(cfg: Mapping[str, Any], model: nn.Module, graphs: Sequence[Data],
                 seed: int) -> Iterable:
    r"""The method's training batches. Snippet methods: a
    :class:`~torch.utils.data.DistributedSampler` (one replica without a
    process group, so one process and ``N`` processes see the same global
    batches: ``train.batch_size`` is global, split over ranks). P-GCN: the
    paper's 1 : 6 : 1 neighbour-sampled loader (each rank draws its own seeds)."""
    t = cfg["train"]
    info = dist_info()
    if cfg["method"] == "pgcn":
        from tagraph.loader import PGCNTrainLoader

        return PGCNTrainLoader(graphs, list(t.get("num_neighbors", [4, 4])),
                               batch_size=int(t["batch_size"]) // info.world_size,
                               epoch_multiplier=int(t.get("epoch_multiplier", 1)))
    from torch.utils.data import DistributedSampler

    bs = int(t["batch_size"])
    if bs % info.world_size:
        raise ValueError(f"train.batch_size {bs} is not divisible by the {info.world_size} "
                         "processes")
    sampler = DistributedSampler(graphs, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=seed)
    loader: Iterable = DataLoader(graphs, batch_size=bs // info.world_size, sampler=sampler,
)
    if hasattr(model, "track_epochs"):  # ISSF: memory momentum follows the epoch
        loader = model.track_epochs(loader)
        loader.sampler = sampler  # type: ignore[attr-defined]
    return loader


# --------------------------------------------------------------------------- predict & score
@torch.no_grad()
def predict(cfg: Mapping[str, Any], model: nn.Module, graphs: Sequence[Data],
            classes: Sequence[str], device: str | torch.device = "cpu",
            progress: bool = False) -> Detections:
    r"""Detections of whole videos (deterministic, no sampling), class names as labels."""
    model.eval()
    p = dict(cfg.get("predict", {}))
    bs = int(p.pop("batch_size", 16))
    if cfg["method"] == "pgcn":
        from tagraph.engine.pgcn import pgcn_predict

        return pgcn_predict(model, graphs, classes, batch_size=bs, device=device, **p)
    from tagraph.models import detection_records

    loader: Iterable = DataLoader(graphs, batch_size=bs, shuffle=False)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="predict", leave=False, dynamic_ncols=True)
    records: list = []
    for batch in loader:
        batch = move_to_device(batch, device)
        records += detection_records(model.predict(batch), batch, list(classes))
    if not records:
        return Detections.from_records([])
    return Detections.from_records(records)


def score(dets: Detections, gt: Mapping[str, VideoAnnotation], video_ids: Iterable[str],
          tiou: Sequence[float], ambiguous: str | None = None) -> Any:
    r"""mAP of :obj:`dets` on the videos :obj:`video_ids` only (the class
    taxonomy stays that of the whole ground truth); detections of classes
    without any ground-truth instance are dropped (they cannot change another
    class's AP). Returns a :class:`~tagraph.evaluation.DetectionResult`."""
    ids = set(video_ids)
    missing = ids - set(gt)
    if missing:
        raise ValueError(f"{len(missing)} videos have no ground truth, e.g. {sorted(missing)[0]!r}")
    marked = {k: dataclasses.replace(v, subset="__evaluated__" if k in ids else "__other__")
              for k, v in gt.items()}
    known = sorted({lab for v in gt.values() for lab in v.labels})
    if len(dets):
        dets = dets[np.isin(dets.label, known)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detection_map(marked, dets, list(tiou), subset="__evaluated__",
                             ambiguous=ambiguous)


class EmptyPredictionsWarning(RuntimeWarning):
    r"""Predictions are empty, or most videos with ground truth have none
    (see :func:`coverage_warning`)."""


@dataclass(frozen=True)
class CoverageReport:
    r"""Which of the evaluated videos received predictions.

    Attributes:
        videos (int): Evaluated videos.
        videos_with_predictions (int): Evaluated videos with at least one prediction.
        positive_videos (int): Evaluated videos with at least one ground-truth
            segment.
        missing (tuple[str, ...]): Ids of the positive videos without any
            prediction, in evaluation order.
        predictions (int): Predictions on the evaluated videos.
    """

    videos: int
    videos_with_predictions: int
    positive_videos: int
    missing: tuple[str, ...]
    predictions: int

    @property
    def positive_videos_without_predictions(self) -> int:
        r"""Positive videos without any prediction (:obj:`len(missing)`)."""
        return len(self.missing)

    @property
    def too_sparse(self) -> bool:
        r"""Whether there are videos but no prediction at all, or more than half
        of the positive videos have none."""
        return self.videos > 0 and (
            self.predictions == 0
            or 2 * self.positive_videos_without_predictions > self.positive_videos)

    def to_dict(self) -> dict[str, int]:
        r"""The counts, as written into ``eval_<what>.json``."""
        return {"videos_with_predictions": self.videos_with_predictions,
                "positive_videos": self.positive_videos,
                "positive_videos_without_predictions": self.positive_videos_without_predictions}


def coverage_report(dets: Detections, gt: Mapping[str, VideoAnnotation],
                    video_ids: Iterable[str]) -> CoverageReport:
    r"""Counts, over the videos :obj:`video_ids`, those with predictions and
    the "positive" ones (at least one ground-truth segment in :obj:`gt`)
    without any prediction. Predictions on other videos are not counted.

    Args:
        dets (Detections): The predictions.
        gt (Mapping[str, VideoAnnotation]): Ground truth (videos absent from it
            count as not positive).
        video_ids (Iterable[str]): The evaluated videos.

    Returns:
        CoverageReport: The counts and the ids of the uncovered positive videos.
    """
    ids = list(dict.fromkeys(str(v) for v in video_ids))
    vid, counts = np.unique(dets.video_id, return_counts=True) if len(dets) else ((), ())
    per_video = dict(zip(np.asarray(vid).tolist(), np.asarray(counts).tolist()))
    positive = [v for v in ids if v in gt and len(gt[v]) > 0]
    return CoverageReport(
        videos=len(ids),
        videos_with_predictions=sum(1 for v in ids if v in per_video),
        positive_videos=len(positive),
        missing=tuple(v for v in positive if v not in per_video),
        predictions=int(sum(per_video.get(v, 0) for v in ids)))


def coverage_warning(report: CoverageReport, what: str = "test") -> str | None:
    r"""The message to warn with when :obj:`report` is
    :attr:`~CoverageReport.too_sparse` (no prediction at all, or none on more
    than half of the :obj:`what` videos with ground truth), else :obj:`None`.
    It names the counts, up to 5 uncovered videos and what to check."""
    if not report.too_sparse:
        return None
    n_miss, n_pos = report.positive_videos_without_predictions, report.positive_videos
    examples = ""
    if report.missing:
        examples = f", e.g. {', '.join(report.missing[:5])}{', ...' if n_miss > 5 else ''}"
    if report.predictions == 0:
        head = (f"no predictions at all on the {report.videos} {what} videos "
                f"({n_pos} with ground truth{examples})")
    else:
        head = (f"{n_miss} of the {n_pos} {what} videos with ground truth have no prediction "
                f"({examples[2:]}); the {report.predictions} prediction(s) cover "
                f"{report.videos_with_predictions} of the {report.videos} {what} videos")
    return (f"{head}. The model's scores may never pass the detection thresholds: check the "
            "method's detection settings (model.detection: class_threshold, thresholds) and "
            "score the results with 'tagraph evaluate'.")


def _warn_coverage(message: str | None) -> None:
    if message is None:
        return
    _LOG.warning(message)
    warnings.warn(message, EmptyPredictionsWarning, stacklevel=3)


def _ids(graphs: Sequence[Data]) -> list[str]:
    return [g.video_id for g in graphs]


# --------------------------------------------------------------------------- files
def write_config(cfg: Mapping[str, Any], folder: str | os.PathLike) -> Path:
    r"""Writes the resolved config as ``folder/config.toml`` (atomically)."""
    path = Path(folder) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, dumps_toml(cfg))
    return path


def resolve_device(device: str | None = None) -> torch.device:
    r""":obj:`"auto"` / :obj:`None`: CUDA when available (this rank's
    ``LOCAL_RANK`` GPU), else CPU."""
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but CUDA is not available")
    return dev


def _log_to(folder: Path) -> logging.Handler:
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    _LOG.addHandler(handler)
    _LOG.setLevel(logging.INFO)
    _LOG.propagate = False  # the console shows progress bars; the log file the records
    return handler


def evaluate_and_save(cfg: Mapping[str, Any], dets: Detections, data: RunData,
                      graphs: Sequence[Data], out_json: Path, what: str = "test",
                      write_eval: bool = True) -> dict[str, Any]:
    r"""Scores :obj:`dets` on :obj:`graphs`' videos, writes the results JSON
    and (with :obj:`write_eval`) ``eval_<what>.json`` beside it; returns the summary
    (with the :func:`coverage_report` counts and ``warning``, the
    :func:`coverage_warning` message or :obj:`None`; nothing is warned here)."""
    tiou = list(cfg.get("eval", {}).get("tiou", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]))
    res = score(dets, data.gt, _ids(graphs), tiou, data.ambiguous)
    cov = coverage_report(dets, data.gt, _ids(graphs))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    save_results(out_json, dets)
    summary = {"method": cfg["method"], "dataset": cfg["data"]["dataset"],
               "videos": len(graphs), "predictions": len(dets), **cov.to_dict(),
               "warning": coverage_warning(cov, what),
               "tiou": tiou, "mAP": [float(v) for v in res.mAP],
               "average_mAP": float(res.average_mAP), "results": str(out_json)}
    if write_eval:
        atomic_write(out_json.parent / f"eval_{what}.json", json.dumps(summary, indent=1))
    summary["result"] = res  # the DetectionResult (not JSON: dropped from files)
    return summary


# --------------------------------------------------------------------------- train
#: Files ``train`` writes into its output folder (what ``overwrite`` removes).
RUN_FILES = ("config.toml", "last.pt", "best.pt", "metrics.jsonl", "train.log",
             "results_test.json", "eval_test.json", "report.html")


class DataCheckWarning(UserWarning):
    r"""The data check before training found something suspicious (e.g. the
    stride implied by the feature lengths differs from ``data.feature_stride``)."""


def prepare_run_folder(out: str | os.PathLike, *, resume: bool = False,
                       overwrite: bool = False) -> Path:
    r"""Checks :obj:`out` before a run writes into it: with :obj:`resume` it
    must hold ``last.pt``; otherwise it must be empty or absent, unless
    :obj:`overwrite` (then the files of an earlier run, :data:`RUN_FILES`,
    are removed; nothing else is touched).

    Raises:
        ValueError: Naming the folder and what to do.
    """
    out = Path(out)
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if resume:
        if not (out / "last.pt").is_file():
            raise ValueError(f"--resume: '{out / 'last.pt'}' does not exist, so there is no run "
                             "to continue; drop --resume to start one")
        return out
    if out.is_dir() and any(out.iterdir()):
        held = sorted(p.name for p in out.iterdir())
        if not overwrite:
            shown = ", ".join(held[:6]) + (", ..." if len(held) > 6 else "")
            raise ValueError(f"output folder '{out}' is not empty ({shown}): continue that run "
                             "with --resume, replace it with --overwrite, or choose another "
                             "--out")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    elif out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out}' is a file, not a folder")
    return out


class _EpochConsole(logging.Handler):
    r"""Turns the trainer's epoch records into one console line each."""

    def __init__(self, write: Callable[[str], None], select: str) -> None:
        super().__init__(logging.INFO)
        self.write, self.select, self.values = write, select, {}

    def emit(self, record: logging.LogRecord) -> None:
        if not (isinstance(record.args, tuple) and len(record.args) == 3
                and str(record.msg).startswith("epoch %d/%d")):
            return
        try:
            epoch, epochs, text = record.args
            rec = json.loads(text)
        except (TypeError, ValueError):
            return
        self.values[epoch] = rec.get(self.select)
        best = rec.get("best_epoch")
        parts = [f"epoch {epoch:>{len(str(epochs))}}/{epochs}"]
        if "loss" in rec:
            parts.append(f"loss {rec['loss']:.4f}")
        value = rec.get(self.select)
        if isinstance(value, (int, float)):
            scale, unit = (100.0, "%") if self.select.endswith("mAP") else (1.0, "")
            parts.append(f"{self.select} {value * scale:.2f}{unit}")
            bv = self.values.get(best)
            if isinstance(bv, (int, float)):
                parts.append(f"best {bv * scale:.2f}{unit} (epoch {best})")
        if "time" in rec:
            parts.append(f"{rec['time']:.1f} s")
        self.write("  ".join(parts))


def _check_data_first(cfg: Mapping[str, Any], need_train: bool = True) -> list[str]:
    r"""Runs :func:`~tagraph.engine.data_check.check_data`; raises on errors,
    returns the warnings."""
    name = cfg["data"].get("dataset")
    if name == "wtalc_thumos14":
        return []
    from tagraph.engine.data_check import check_data
    from tagraph.engine.data_config import JSON_DATASETS, data_layout

    if name in JSON_DATASETS:
        _require_layout(name, data_layout(cfg["data"]))  # where to get it, when absent
    report = check_data(cfg, need_train=need_train)
    if report.errors:
        shown = report.errors[:8]
        more = len(report.errors) - len(shown)
        head = "the data check failed ('tagraph data check' shows the whole report):"
        if len(report.errors) == 1:  # one problem, one line
            raise ValueError(f"{head} {shown[0]}")
        raise ValueError(head + "\n  " + "\n  ".join(shown)
                         + (f"\n  ... and {more} more" if more else ""))
    return report.warnings


def train(
    cfg: Mapping[str, Any],
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
    data: RunData | None = None,
    test: bool = True,
    console: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    r"""Trains the config's method, selects the checkpoint on validation mAP,
    and (with :obj:`test`) evaluates ``best.pt`` on the test subset.

    Before anything is written: the output folder is checked
    (:func:`prepare_run_folder`: a non-empty one needs :obj:`resume` or
    :obj:`overwrite`), the data are checked (:func:`~tagraph.engine.data_check.check_data`,
    the checks of ``tagraph data check``; its warnings are issued as
    :class:`DataCheckWarning`) and every subset is loaded. Then it writes into
    :obj:`out_dir`: ``config.toml``, ``last.pt``, ``best.pt``,
    ``metrics.jsonl``, ``train.log``, ``results_test.json``,
    ``eval_test.json``. Under ``torchrun`` every rank trains on its share of
    each global batch and rank 0 writes the files.

    Args:
        console (callable, optional): Receives one line per epoch (loss,
            validation mAP, best so far, time). (default: :obj:`None`)

    Returns a summary dict (``best_epoch``, ``val_mAP``, test ``mAP`` per
    threshold and ``average_mAP``, ``history``, the :func:`coverage_report`
    counts and ``warning``, ``files`` written, the
    :class:`~tagraph.evaluation.DetectionResult` as ``result``). When the
    test predictions are empty or miss more than half of the test videos with
    ground truth, warns (:class:`EmptyPredictionsWarning`, also logged to
    ``train.log``).
    """
    out = Path(out_dir)
    dev = resolve_device(device)
    import torch.distributed as tdist

    started_group = tdist.is_available() and not tdist.is_initialized()
    info = init_distributed(dev)
    t = cfg["train"]
    seed = int(cfg.get("seed", 0))
    handler: logging.Handler | None = None
    epoch_console: logging.Handler | None = None
    try:
        if info.rank == 0:
            prepare_run_folder(out, resume=resume, overwrite=overwrite)
        if data is None:
            data = load_data(cfg, check=info.rank == 0)
        if info.rank == 0:  # every check passed: the run's files may be written now
            handler = _log_to(out)
            write_config(cfg, out)
            if console is not None:
                epoch_console = _EpochConsole(console, t.get("select", "val_mAP"))
                _LOG.addHandler(epoch_console)
        torch.manual_seed(seed)
        model = build_model(cfg, data.in_channels, len(data.classes))
        if hasattr(model, "fit_input_norm"):
            # input statistics of the training split (whole videos, no RNG drawn)
            model.fit_input_norm(getattr(data.train, "uncropped", data.train))
        if cfg["method"] == "pgcn":
            from tagraph.models import regression_stats

            fg_t = torch.cat([g.reg_target for g in data.train])
            fg_iou = torch.cat([g.iou for g in data.train])
            model.set_regression_stats(*regression_stats(fg_t, fg_iou))
        opt = build_optimizer(cfg, model)
        sched = build_scheduler(cfg, opt)
        loader = train_loader(cfg, model, data.train, seed)
        clip = float(t.get("grad_clip", 0.0)) or None
        trainer = Trainer(model, opt, scheduler=sched, device=dev, out_dir=out,
                          seed=seed + info.rank, grad_clip=clip, progress=progress,
                          config=dict(cfg), amp=bool(t.get("amp", False)))
        tiou = list(cfg.get("eval", {}).get("tiou", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]))
        val_ids = _ids(data.val)

        def val_fn(m: nn.Module) -> dict[str, float]:
            dets = predict(cfg, m, data.val, data.classes, dev)
            return {"val_mAP": float(score(dets, data.gt, val_ids, tiou).average_mAP)}

        _LOG.info("train %s on %s: %d train / %d val / %d test videos, D=%d, %d classes, "
                  "device %s, world size %d", cfg["method"], cfg["data"]["dataset"],
                  len(data.train), len(data.val), len(data.test), data.in_channels,
                  len(data.classes), dev, info.world_size)
        history = trainer.fit(loader, int(t["epochs"]), val_fn=val_fn,
                              select=t.get("select", "val_mAP"), mode=t.get("mode", "max"),
                              resume=resume)
        summary: dict[str, Any] = {
            "method": cfg["method"], "best_epoch": trainer.best_epoch,
            "val_mAP": trainer.best_value, "history": history, "out_dir": str(out),
            "train_videos": len(data.train), "val_videos": len(data.val),
            "test_videos": len(data.test), "classes": len(data.classes),
            "in_channels": data.in_channels}
        barrier()
        if test and info.rank == 0:
            load_checkpoint(out / "best.pt", model, config=dict(cfg))
            dets = predict(cfg, model, data.test, data.classes, dev, progress=progress)
            ev = evaluate_and_save(cfg, dets, data, data.test, out / "results_test.json")
            summary.update(ev)
            _LOG.info("test: average mAP %.4f, mAP %s", summary["average_mAP"],
                      [round(v, 4) for v in summary["mAP"]])
            _warn_coverage(summary["warning"])
        summary["files"] = [str(out / f) for f in RUN_FILES if (out / f).is_file()]
        return summary
    finally:
        if started_group and info.enabled:
            tdist.destroy_process_group()
        if epoch_console is not None:
            _LOG.removeHandler(epoch_console)
        if handler is not None:
            _LOG.removeHandler(handler)
            _LOG.propagate = True
            handler.close()


def predict_checkpoint(
    checkpoint: str | os.PathLike,
    out_json: str | os.PathLike,
    *,
    overrides: Sequence[str] = (),
    device: str | None = None,
    progress: bool = True,
    evaluate: bool = True,
) -> dict[str, Any]:
    r"""Rebuilds data and model from the config stored in :obj:`checkpoint`
    (with ``key=value`` :obj:`overrides`, e.g. ``data.root=...``), predicts
    the test subset and writes :obj:`out_json` (ActivityNet results), and
    nothing else.
    Returns the summary (mAP when evaluated; the :func:`coverage_report`
    counts and ``warning`` always). Warns like :func:`train` when the
    predictions are empty or miss most test videos with ground truth."""
    from tagraph.engine.config import apply_overrides

    ckpt = read_checkpoint(checkpoint, require=("model", "config"))
    if not ckpt.get("config"):
        raise CheckpointError(f"checkpoint '{checkpoint}' holds no config; it was not written "
                              "by 'tagraph train'")
    cfg = apply_overrides(ckpt["config"], overrides)
    check_checkpoint_method(ckpt, checkpoint, cfg.get("method"))
    dev = resolve_device(device)
    data = load_data(cfg, need_train=False)
    model = build_model(cfg, data.in_channels, len(data.classes))
    load_model_weights(model, ckpt, checkpoint, method=cfg.get("method"),
                       in_channels=data.in_channels, num_classes=len(data.classes))
    model.to(dev)
    try:
        dets = predict(cfg, model, data.test, data.classes, dev, progress=progress)
    except ValueError as e:
        if not str(e).startswith("non-finite"):
            raise
        raise ValueError(f"checkpoint '{checkpoint}': {e} (NaN/inf weights or features); "
                         "nothing was written") from None
    out_json = Path(out_json)
    if evaluate:
        summary = evaluate_and_save(cfg, dets, data, data.test, out_json, write_eval=False)
    else:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        save_results(out_json, dets)
        cov = coverage_report(dets, data.gt, _ids(data.test))
        summary = {"results": str(out_json), "videos": len(data.test),
                   "predictions": len(dets), **cov.to_dict(),
                   "warning": coverage_warning(cov)}
    _warn_coverage(summary["warning"])
    return summary
