r"""PyG datasets of untrimmed videos: one snippet or proposal graph per video."""

from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.io import fs

import tagraph
from tagraph.data.clicks import clicks_to_snippets, read_clicks, simulate_clicks, video_rng
from tagraph.data.features import FeatureFolder, file_signature, resample_snippets
from tagraph.data.proposal_io import read_bsn_folder, read_ssn_proposals
from tagraph.data.video import Video
from tagraph.io import atomic_write, load_annotations
from tagraph.io.atomic import remove_stale_temp_files, temp_path

__all__ = ["TALDataset", "ActivityNetJSONDataset", "THUMOS14", "ActivityNet13", "read_classes"]

GraphKind = Literal["snippet", "proposal"]
_CLICK_KINDS = {"background": ("background",), "action": ("action",),
                "both": ("background", "action")}


def _atomic(write: Callable[[str], None], path: str | os.PathLike) -> None:
    """Runs :obj:`write(tmp)` and moves :obj:`tmp` over :obj:`path`; the temporary
    name is that of :mod:`tagraph.io.atomic` (so that a killed build's leftovers are
    recognised and removed), and an :class:`OSError` (a full disk) names :obj:`path`."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except OSError as e:
        if e.errno and (e.filename is None or os.fspath(e.filename) == str(tmp)):
            raise type(e)(e.errno, e.strerror or str(e), str(path)) from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _is_leftover(folder: Path) -> bool:
    """Whether :obj:`folder` holds nothing but (folders of) temporary files."""
    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink():
            if not _is_leftover(p):
                return False
        elif not (p.name.startswith(".") and p.name.endswith(".tmp")):
            return False
    return True


def _describe_callable(fn: Any) -> Any:
    """A stable description of a callable for cache keys: its repr when that
    is meaningful (PyG transforms show their arguments), else its qualified
    name plus a hash of its code and constants, so that editing a function
    rebuilds the cache while re-running the same script reuses it."""
    if fn is None:
        return None
    import functools

    if isinstance(fn, functools.partial):
        return {"partial": _describe_callable(fn.func), "args": repr(fn.args),
                "kwargs": repr(sorted(fn.keywords.items()))}
    text = repr(fn)
    code = getattr(fn, "__code__", None)
    if code is None and " at 0x" not in text:
        return text
    if code is None:  # an object without a useful repr: its class and attributes
        return {"class": f"{type(fn).__module__}.{type(fn).__qualname__}",
                "state": repr(sorted(getattr(fn, "__dict__", {}).items()))}
    h = hashlib.sha256(code.co_code)
    h.update(repr(code.co_consts).encode())
    h.update(repr(getattr(fn, "__defaults__", None)).encode())
    return {"function": f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}",
            "code": h.hexdigest()[:16]}


def read_classes(src: str | os.PathLike | Sequence[str]) -> list[str]:
    """A class list: a sequence of names, or a text file with one name a line."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: class list not found")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n]
    else:
        names = [str(c) for c in src]
    if len(set(names)) != len(names):
        raise ValueError(f"class list has duplicates: {names}")
    if not names:
        raise ValueError("class list is empty")
    return names


def select_subset(annotations: Mapping[str, Any], subset: str,
                  aliases: Mapping[str, Any] | None = None) -> dict[str, Any]:
    r"""The annotations of :obj:`subset`: matched verbatim (case-insensitive)
    against each video's subset, else through the first of its
    :obj:`aliases` (``{"train": ["training", "validation"]}``) that matches."""
    key = subset.lower()
    anns = {v: a for v, a in annotations.items() if (a.subset or "").lower() == key}
    alias = (aliases or {}).get(key)
    for name in ([alias] if isinstance(alias, str) else alias or []):
        if anns:
            break
        anns = {v: a for v, a in annotations.items()
                if (a.subset or "").lower() == str(name).lower()}
    return anns


def _signature(path: str | os.PathLike) -> list:
    """:func:`file_signature` of a file, or of every file of a folder (for cache keys)."""
    p = Path(path)
    if p.is_dir():
        return [list(file_signature(q)) for q in sorted(p.iterdir()) if q.is_file()]
    return list(file_signature(p))


class TALDataset(InMemoryDataset):
    r"""Untrimmed videos as graphs, from an ActivityNet-style annotation JSON
    and a folder of per-video features (the layout of ActionFormer / OpenTAD
    THUMOS14 and ActivityNet features, and of :class:`SyntheticTAL`).

    Each item is a :class:`~torch_geometric.data.Data` per video:

    * :obj:`graph="snippet"`: :func:`tagraph.data.snippet_graph` (nodes =
      snippets; :obj:`x` :obj:`[T, D]`, :obj:`pos` :obj:`[T]` centre times,
      temporal / semantic edges) plus :obj:`y` :obj:`[1, C]` multi-hot video
      labels;
    * :obj:`graph="proposal"`: :func:`tagraph.data.proposal_graph` over the
      proposals given by :obj:`proposals` (nodes = proposals; :obj:`x`,
      :obj:`x_ext`, :obj:`segments`, :obj:`y` (0 = background), :obj:`iou`,
      ...);
    * :obj:`graph=None`: the snippet sequence only (:obj:`x`, :obj:`pos`,
      :obj:`y`; no edges), for methods that build their own.

    and in every case :obj:`gt_segments` :obj:`[M, 2]` (s), :obj:`gt_labels`
    :obj:`[M]` (0-based), :obj:`video_id`, :obj:`duration`, :obj:`fps`, and
    with :obj:`clicks`, :obj:`clicks` / :obj:`click_labels` :obj:`[K]`
    (snippet indices and classes, background = :math:`C`; per-video indices,
    not shifted when batched: use :obj:`follow_batch` and :obj:`ptr`).

    Processed graphs are cached under :obj:`root/processed/<name>-<hash>/`.
    The hash covers everything that shapes them: every argument below, the
    annotation / class / proposal / click files' and every feature file's
    size and modification time, the pre-transform / pre-filter and the
    package version. The key itself is stored next to the cache and checked
    on load, so a changed argument or file rebuilds and a stale cache is never
    served.

    Args:
        root (str or Path): Folder for the processed cache (and the default
            :obj:`raw/annotations.json` and :obj:`raw/features/`).
        annotation_file (str or Path, optional): ActivityNet-style JSON.
        feature_dir (str or Path, optional): Feature folder (layouts in
            :mod:`tagraph.data.features`).
        subset (str, optional): Subset to keep (case-insensitive), e.g.
            :obj:`"Validation"`. (default: :obj:`None`, all videos)
        graph (str, optional): :obj:`"snippet"`, :obj:`"proposal"` or
            :obj:`None`. (default: :obj:`"snippet"`)
        modality (str, optional): :obj:`"rgb"` (first half), :obj:`"flow"`
            (second half) or :obj:`"both"`. (default: :obj:`"both"`)
        classes (list[str] or path, optional): Class names (their order sets
            the indices) or a file with one a line. (default: sorted labels of
            the whole annotation file, all subsets)
        stride (float, optional): Feature stride in frames. (default: :obj:`4`)
        window (float, optional): Frames per snippet. (default: :obj:`16`)
        default_fps (float, optional): Frame rate for videos whose JSON entry
            has none. (default: :obj:`None`: such videos are an error)
        feature_dim (int, optional): Expected feature dimension after
            modality selection (checked). (default: :obj:`None`)
        feature_prefix (str, optional): File-name prefix of the features
            (:obj:`"v_"` for ActionFormer's ActivityNet). (default: :obj:`""`)
        feature_pattern (str, optional): Feature file name relative to
            :obj:`feature_dir`, with :obj:`{video}` and optionally
            :obj:`{stream}` (:obj:`rgb` / :obj:`flow` files), e.g.
            :obj:`"v_{video}.npy"` or :obj:`"{stream}/{video}.npy"` (see
            :class:`~tagraph.data.FeatureFolder`). (default: :obj:`None`:
            search the usual layouts)
        subset_aliases (dict, optional): Other names of subsets, e.g.
            :obj:`{"train": "Validation"}` (or a list of names, the first one
            found wins); :obj:`subset` is first matched
            verbatim (case-insensitive) against the JSON's subsets, the alias
            only when nothing matches. (default: :obj:`None`)
        max_snippets (int, optional): Resample longer videos to this many
            snippets (see :func:`~tagraph.data.resample_snippets`; times follow).
            (default: :obj:`None`)
        resample (str, optional): :obj:`"uniform"` (keep :obj:`max_snippets`
            evenly spaced snippets of longer videos, e.g. THUMOS14 at 750) or
            :obj:`"interpolate"` (every video to exactly :obj:`max_snippets`,
            e.g. ActivityNet at 100). Random crops are a training-time
            augmentation and are not cached. (default: :obj:`"uniform"`)
        proposals (path, dict or callable, optional): For
            :obj:`graph="proposal"`: an SSN proposal list file, a folder of
            BSN / BMN :obj:`<video_id>.csv`, a dict :obj:`{video_id: [N, 2]
            seconds}`, or :obj:`fn(video, x, pos) -> [N, 2] seconds` (e.g. a
            proposal generator). A video absent from a file is an error; an
            empty list is valid.
        clicks (str or path, optional): :obj:`"background"`, :obj:`"action"`
            or :obj:`"both"` to simulate clicks (BackTAL / SF-Net protocols,
            seeded per video by :obj:`click_seed`), or a click file
            (:mod:`tagraph.data.clicks`). (default: :obj:`None`)
        click_seed (int, optional): Seed of simulated clicks. (default: :obj:`0`)
        graph_kwargs (dict, optional): Keyword arguments of the graph builder.
        outside (str, optional): Ground-truth segments reaching outside
            :math:`[0, \mathrm{duration}]`: :obj:`"clip"` (clip them, drop the
            ones entirely outside, warn; real THUMOS14 has 30 such segments) or
            :obj:`"error"`. (default: :obj:`"clip"`)
        length_tolerance (float, optional): Seconds by which the features may
            end before the last annotated segment. (default: :obj:`2.0`)
        in_memory (bool, optional): Hold all graphs in memory (one collated
            file, PyG's :class:`InMemoryDataset`); with :obj:`False` each graph
            is its own file, read on access, for corpora that do not fit
            (THUMOS14 at stride 4 is about 5 GB of 2048-d float32 snippets;
            proposal graphs triple that with :obj:`x_ext`).
            (default: :obj:`True`)
        process_threads (int, optional): torch intra-op threads while graphs
            are built (restored afterwards). Per-video operations are small,
            and extra threads mostly add synchronisation: building the small
            synthetic proposal graphs on a busy 2-core machine was 10x faster
            with one thread. :obj:`None` keeps the current setting.
            (default: :obj:`1`)
        transform, pre_transform, pre_filter, log, force_reload: As in
            :class:`~torch_geometric.data.InMemoryDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        annotation_file: str | os.PathLike | None = None,
        feature_dir: str | os.PathLike | None = None,
        *,
        subset: str | None = None,
        graph: GraphKind | None = "snippet",
        modality: Literal["rgb", "flow", "both"] = "both",
        classes: Sequence[str] | str | os.PathLike | None = None,
        stride: float = 4.0,
        window: float = 16.0,
        default_fps: float | None = None,
        feature_dim: int | None = None,
        feature_prefix: str = "",
        feature_pattern: str | None = None,
        subset_aliases: Mapping[str, str | Sequence[str]] | None = None,
        max_snippets: int | None = None,
        resample: Literal["uniform", "interpolate"] = "uniform",
        proposals: Any = None,
        clicks: str | os.PathLike | None = None,
        click_seed: int = 0,
        graph_kwargs: Mapping[str, Any] | None = None,
        outside: Literal["clip", "error"] = "clip",
        length_tolerance: float = 2.0,
        in_memory: bool = True,
        process_threads: int | None = 1,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        pre_filter: Callable | None = None,
        log: bool = True,
        force_reload: bool = False,
    ) -> None:
        root = osp.expanduser(osp.normpath(str(root)))
        self.root = root
        if graph not in ("snippet", "proposal", None):
            raise ValueError(f"graph must be 'snippet', 'proposal' or None, got {graph!r}")
        if graph == "proposal" and proposals is None:
            raise ValueError("graph='proposal' needs 'proposals' (a list file, a BSN folder, "
                             "a dict or a generator)")
        if resample not in ("uniform", "interpolate"):
            raise ValueError(f"resample must be 'uniform' or 'interpolate', got {resample!r}")
        if outside not in ("clip", "error"):
            raise ValueError(f"outside must be 'clip' or 'error', got {outside!r}")
        if max_snippets is not None and max_snippets < 1:
            raise ValueError(f"max_snippets must be >= 1, got {max_snippets}")
        self.annotation_file = Path(annotation_file or osp.join(root, "raw", "annotations.json"))
        self.feature_dir = Path(feature_dir or osp.join(root, "raw", "features"))
        self.subset = subset
        self.graph = graph
        self.modality = modality
        self.stride, self.window = float(stride), float(window)
        self.default_fps = default_fps
        self.feature_dim = feature_dim
        self.feature_prefix = feature_prefix
        if feature_pattern:
            from tagraph.data.features import check_feature_pattern

            check_feature_pattern(feature_pattern)
        self.feature_pattern = feature_pattern or None
        self.subset_aliases = {str(k).lower(): [v] if isinstance(v, str) else list(v)
                               for k, v in (subset_aliases or {}).items()}
        self.max_snippets = max_snippets
        self.resample = resample
        self.proposals = proposals
        self.clicks = clicks
        self.click_seed = int(click_seed)
        self.graph_kwargs = dict(graph_kwargs or {})
        self.outside = outside
        self.length_tolerance = length_tolerance
        self.in_memory = bool(in_memory)
        self.process_threads = process_threads
        self._classes_arg = classes

        self.classes, self.videos, sources = self._read_videos()
        self._key = self._cache_key(sources, pre_transform, pre_filter)
        self._hash = hashlib.sha256(
            json.dumps(self._key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        key_file = Path(self.processed_dir) / "key.json"
        if not force_reload and (Path(self.processed_dir) / "data.pt").is_file():
            try:
                stored = json.loads(key_file.read_text())
            except (OSError, ValueError):
                stored = None
            if stored != json.loads(json.dumps(self._key, sort_keys=True, default=str)):
                force_reload = True  # stale or foreign cache under this name: rebuild
        super().__init__(root, transform, pre_transform, pre_filter, log=log,
                         force_reload=force_reload)
        if self.in_memory:
            self.load(self.processed_paths[0])
        else:
            self._index = fs.torch_load(self.processed_paths[0])

    # ----------------------------------------------------------------------------------
    # reading
    # ----------------------------------------------------------------------------------

    def _read_videos(self) -> tuple[list[str], list[Video], dict[str, Any]]:
        """Classes, the selected videos (with feature loaders), and the file
        signatures that go into the cache key."""
        name = str(self.annotation_file)
        if not self.annotation_file.is_file():
            raise FileNotFoundError(f"{name}: annotation file not found")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # segments outside: handled below per `outside`
            everything = load_annotations(self.annotation_file)
        if self._classes_arg is not None:
            classes = read_classes(self._classes_arg)
        else:
            classes = sorted({lab for a in everything.values() for lab in a.labels})
        anns = everything
        if self.subset is not None:
            anns = select_subset(everything, self.subset, self.subset_aliases)
            if everything and not anns:
                present = sorted({str(a.subset) for a in everything.values()})
                alias = self.subset_aliases.get(self.subset.lower())
                also = f" (nor its alias(es) {alias})" if alias else ""
                raise ValueError(f"{name}: no video in subset '{self.subset}'{also} "
                                 f"(subsets in the file: {present})")
        index = {c: i for i, c in enumerate(classes)}
        folder = FeatureFolder(self.feature_dir, self.modality, self.feature_prefix,
                               self.feature_pattern)
        videos, feature_sigs = [], []
        clipped = []
        for vid, a in anns.items():
            where = f"{name}: video '{vid}'"
            if a.duration is None or not a.duration > 0:
                raise ValueError(f"{where}: field 'duration' missing or not positive")
            fps = a.fps if a.fps else self.default_fps
            if fps is None:
                raise ValueError(f"{where}: field 'fps' missing and no default_fps given")
            missing = [lab for lab in a.labels if lab not in index]
            if missing:
                raise ValueError(f"{where}: field 'label': {missing[0]!r} is not in the class "
                                 f"list ({len(classes)} classes)")
            seg, lab = a.segments, np.array([index[x] for x in a.labels], dtype=np.int64)
            seg, lab = self._check_segments(seg, lab, a.duration, where, clipped)
            layout, paths = folder.files(vid)
            feature_sigs.append([list(file_signature(p)) for p in paths])
            videos.append(Video(vid, float(a.duration), float(fps), self.stride, self.window,
                                seg, lab, classes, a.subset, loader=folder.loader(vid),
                                source=paths[0] if len(paths) == 1 else self.feature_dir))
        self._warn_clipped(name, clipped)
        sources = {"annotation_file": list(file_signature(self.annotation_file)),
                   "features": hashlib.sha256(json.dumps(feature_sigs).encode()).hexdigest()}
        return classes, videos, sources

    @staticmethod
    def _warn_clipped(name: Any, clipped: list) -> None:
        r"""One warning for the segments :meth:`_check_segments` clipped: how many,
        in how many videos, how many were dropped, and the first one."""
        if not clipped:
            return
        n = sum(c[1] for c in clipped)
        dropped = sum(c[2] for c in clipped)
        gone = f" ({dropped} dropped: nothing of them inside)" if dropped else ""
        warnings.warn(f"{name}: {n} ground-truth segment(s) in {len(clipped)} video(s) reach "
                      f"outside [0, duration] and were clipped to it{gone}, e.g. "
                      f"{clipped[0][0]}", stacklevel=4)

    def _check_segments(self, seg: np.ndarray, lab: np.ndarray, duration: float, where: str,
                        clipped: list) -> tuple[np.ndarray, np.ndarray]:
        if len(seg) == 0:
            return seg, lab
        inv = np.flatnonzero(seg[:, 0] > seg[:, 1])
        if len(inv):
            raise ValueError(f"{where}: field 'annotations[{inv[0]}].segment' is inverted: "
                             f"{seg[inv[0]].tolist()}")
        tol = 1e-2
        out = (seg[:, 0] < -tol) | (seg[:, 1] > duration + tol)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            msg = (f"{where}: field 'annotations[{i}].segment' {seg[i].tolist()} is outside "
                   f"[0, {duration}]")
            if self.outside == "error":
                raise ValueError(msg)
            seg = np.clip(seg, 0.0, duration)
            keep = seg[:, 1] > seg[:, 0]
            seg, lab = seg[keep], lab[keep]
            clipped.append((msg, int(out.sum()), int((~keep).sum())))
        return seg, lab

    def _cache_key(self, sources: dict[str, Any], pre_transform, pre_filter) -> dict[str, Any]:
        def describe(obj: Any) -> Any:
            if obj is None:
                return None
            if isinstance(obj, (str, os.PathLike)) and Path(obj).exists():
                return {"path": str(obj), "files": _signature(obj)}
            if isinstance(obj, Mapping):
                return {str(k): np.asarray(v).round(6).tolist() for k, v in obj.items()}
            if callable(obj):
                return _describe_callable(obj)
            return str(obj)

        cls_src = self._classes_arg
        return {
            "dataset": type(self).__name__,
            "tagraph": tagraph.__version__,
            "sources": sources,
            "classes": list(self.classes),
            "classes_file": describe(cls_src) if isinstance(cls_src, (str, os.PathLike))
            else None,
            "subset": self.subset,
            "graph": self.graph,
            "modality": self.modality,
            "stride": self.stride,
            "window": self.window,
            "default_fps": self.default_fps,
            "feature_dim": self.feature_dim,
            "feature_prefix": self.feature_prefix,
            "feature_pattern": self.feature_pattern,
            "subset_aliases": sorted((k, list(v)) for k, v in self.subset_aliases.items()),
            "max_snippets": self.max_snippets,
            "resample": self.resample,
            "proposals": describe(self.proposals),
            "clicks": describe(self.clicks),
            "click_seed": self.click_seed,
            "graph_kwargs": {k: repr(v) for k, v in sorted(self.graph_kwargs.items())},
            "outside": self.outside,
            "length_tolerance": self.length_tolerance,
            "in_memory": self.in_memory,
            "pre_transform": _describe_callable(pre_transform),
            "pre_filter": _describe_callable(pre_filter),
        }

    # ----------------------------------------------------------------------------------
    # PyG dataset interface
    # ----------------------------------------------------------------------------------

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_dir(self) -> str:
        sub = (self.subset or "all").replace("/", "_")
        return osp.join(self.root, "processed",
                        f"{type(self).__name__}-{sub}-{self.graph}-{self._hash}")

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt"]

    def len(self) -> int:
        if self.in_memory:
            return super().len()
        return len(self._index["video_ids"])

    def get(self, idx: int) -> Data:
        if self.in_memory:
            data = super().get(idx)
        else:
            data = Data.from_dict(fs.torch_load(self._graph_path(idx)))
        for key in ("duration", "fps"):  # collation turns floats into [1] tensors
            value = data.get(key)
            if isinstance(value, Tensor) and value.numel() == 1:
                data[key] = float(value)
        return data

    @property
    def num_classes(self) -> int:
        """Number of action classes :math:`C` (background not counted)."""
        return len(self.classes)

    @property
    def cache_key(self) -> dict[str, Any]:
        """What the processed cache is keyed by."""
        return self._key

    def process(self) -> None:
        threads = torch.get_num_threads()
        if self.process_threads is not None:
            torch.set_num_threads(self.process_threads)
        try:
            self._process_videos()
        finally:
            torch.set_num_threads(threads)

    def _process_videos(self) -> None:
        folder = Path(self.processed_dir)
        remove_stale_temp_files(folder)
        if (folder / "graphs").is_dir():
            remove_stale_temp_files(folder / "graphs")
        try:
            self._process_videos_into(folder)
        except BaseException:
            # A failed build leaves no cache folder behind (an empty one, one with only
            # temporary files or with some graphs but no index); a complete older one
            # (force_reload) stays.
            import shutil

            if folder.is_dir() and (_is_leftover(folder) or
                                    not Path(self.processed_paths[0]).is_file()):
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def _process_videos_into(self, folder: Path) -> None:
        proposals = self._load_proposals()
        clicks = self._load_clicks()
        data_list = []
        first: tuple[int, Video] | None = None
        for video in self.videos:
            data = self.build(video, proposals, clicks)
            d = int(data.x.size(-1)) if isinstance(data.get("x"), Tensor) else None
            if d is not None and first is None:
                first = (d, video)
            elif d is not None and first is not None and d != first[0]:
                raise ValueError(
                    f"{video.source or self.feature_dir}: video '{video.video_id}': field "
                    f"'features' has dimension {d}, but video '{first[1].video_id}' "
                    f"({first[1].source}) has {first[0]}; every video needs the same "
                    "feature dimension")
            if self.pre_filter is not None and not self.pre_filter(data):
                continue
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            data_list.append(data)
        if not data_list:
            raise ValueError(f"{self.annotation_file}: no video to process "
                             f"(subset {self.subset!r}, after pre_filter)")
        path = Path(self.processed_paths[0])
        if self.in_memory:
            _atomic(lambda f: self.save(data_list, f), path)
        else:
            Path(self.processed_dir, "graphs").mkdir(exist_ok=True)
            for i, data in enumerate(data_list):
                _atomic(lambda f, d=data: fs.torch_save(d.to_dict(), f), self._graph_path(i))
            index = {"video_ids": [d.video_id for d in data_list]}
            _atomic(lambda f: fs.torch_save(index, f), path)
        atomic_write(folder / "key.json",
                     json.dumps(self._key, sort_keys=True, default=str, indent=1))

    def _graph_path(self, idx: int) -> str:
        return osp.join(self.processed_dir, "graphs", f"{idx:06d}.pt")

    def _load_proposals(self) -> Any:
        src = self.proposals
        if self.graph != "proposal" or src is None or callable(src) or isinstance(src, Mapping):
            return src
        path = Path(src)
        if path.is_dir():
            durations = {v.video_id: v.duration for v in self.videos}
            return {vid: seg for vid, (seg, _) in read_bsn_folder(path, durations).items()}
        fps = {v.video_id: v.fps for v in self.videos}
        lists = read_ssn_proposals(path, fps, len(self.classes), keep=fps)
        return {vid: p.segments for vid, p in lists.items()}

    def _load_clicks(self) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
        src = self.clicks
        if src is None:
            return None
        if isinstance(src, str) and src in _CLICK_KINDS:
            kinds = _CLICK_KINDS[src]
            return {v.video_id: simulate_clicks(v.segments, v.labels, v.duration,
                                                len(self.classes),
                                                video_rng(self.click_seed, v.video_id), kinds)
                    for v in self.videos}
        return read_clicks(src, self.classes)

    def snippets(self, video: Video) -> tuple[Tensor, Tensor]:
        """Checked (and resampled) features :obj:`[T, D]` and times :obj:`[T]`."""
        x = video.load_features(self.feature_dim, self.length_tolerance)
        pos = torch.from_numpy(video.snippet_times(x.size(0))).to(torch.float32)
        if self.max_snippets is not None and x.size(0) > 0:
            x, pos = resample_snippets(x, pos, self.max_snippets, self.resample)
        return x, pos

    def build(self, video: Video, proposals: Any = None,
              clicks: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Data:
        """Builds the graph of one video (see the class docstring)."""
        x, pos = self.snippets(video)
        gt = torch.from_numpy(video.segments).to(torch.float32)
        gl = torch.from_numpy(video.labels)
        C = len(self.classes)
        if self.graph == "proposal":
            from tagraph.data import proposal_graph
            seg = self._proposals_of(video, proposals, x, pos)
            kw = {"duration": video.duration, "video_id": video.video_id, **self.graph_kwargs}
            data = proposal_graph(x, pos, seg, gt_segments=gt, gt_labels=gl, **kw)
        elif self.graph == "snippet":
            from tagraph.data import snippet_graph
            kw = {"video_id": video.video_id, **self.graph_kwargs}
            data = snippet_graph(x, pos, **kw)
        else:
            data = Data(x=x, pos=pos, num_nodes=x.size(0))
        if "pos" not in data and self.graph == "snippet":
            data.pos = pos
        y = torch.zeros(1, C)
        if len(gl):
            y[0, gl] = 1.0
        if self.graph == "proposal":
            data.video_label = y
        else:
            data.y = y
        data.gt_segments = gt
        data.gt_labels = gl
        if clicks is not None:
            if video.video_id not in clicks:
                raise ValueError(f"{self.clicks}: video '{video.video_id}': no clicks for "
                                 "this video")
            times, labels = clicks[video.video_id]
            tol = video.window / video.fps  # one snippet
            bad = np.flatnonzero((times < -tol) | (times > video.duration + tol))
            if len(bad):
                raise ValueError(f"{self.clicks}: video '{video.video_id}': field 'clicks': "
                                 f"time {float(times[bad[0]]):g} s is outside the video "
                                 f"[0, {video.duration:g}] s")
            data.clicks = torch.from_numpy(clicks_to_snippets(times, pos.numpy())) if len(pos) \
                else torch.zeros(0, dtype=torch.long)
            data.click_labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        data.video_id = video.video_id
        # float64 so that the collated cache keeps them exact; get() returns Python floats
        data.duration = torch.tensor(float(video.duration), dtype=torch.float64)
        data.fps = torch.tensor(float(video.fps), dtype=torch.float64)
        return data

    def _proposals_of(self, video: Video, proposals: Any, x: Tensor, pos: Tensor) -> Tensor:
        if callable(proposals):
            seg = proposals(video, x, pos)
        else:
            if video.video_id not in proposals:
                raise ValueError(f"{self.proposals}: video '{video.video_id}': no proposals "
                                 "for this video (an empty list is valid, a missing video "
                                 "is not)")
            seg = proposals[video.video_id]
        seg = torch.as_tensor(np.asarray(seg, dtype=np.float32) if not isinstance(seg, Tensor)
                              else seg, dtype=torch.float32).reshape(-1, 2)
        if seg.numel():
            where = f"{self.proposals}: video '{video.video_id}': field 'proposals'"
            if not bool(torch.isfinite(seg).all()):
                raise ValueError(f"{where}: NaN/Inf")
            if bool((seg[:, 0] > seg[:, 1]).any()):
                raise ValueError(f"{where}: inverted segment")
        return seg

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)}, subset={self.subset!r}, "
                f"graph={self.graph!r}, modality={self.modality!r}, "
                f"num_classes={self.num_classes})")


#: Backwards-friendly alias: the generic dataset reads ActivityNet JSON.
ActivityNetJSONDataset = TALDataset


_THUMOS_SUBSETS = {"train": "Validation", "val": "Validation", "validation": "Validation",
                   "test": "Test"}
_ANET_SUBSETS = {"train": "training", "training": "training", "val": "validation",
                 "validation": "validation", "test": "testing", "testing": "testing"}


class THUMOS14(TALDataset):
    r"""THUMOS14 (Jiang et al., 2014) with I3D features in the ActionFormer /
    OpenTAD layout: :obj:`root/annotations/thumos14.json` and
    :obj:`root/i3d_features/<video_id>.npy` (:obj:`[T, 2048]`, RGB first;
    snippets of 16 frames every 4 frames, fps from the JSON). Training is
    subset :obj:`"Validation"` (alias :obj:`"train"`), testing :obj:`"Test"`
    (alias :obj:`"test"`). Other arguments as in :class:`TALDataset`.
    """

    def __init__(self, root: str | os.PathLike, subset: str = "Validation", **kwargs: Any):
        root = Path(root)
        kwargs.setdefault("annotation_file", root / "annotations" / "thumos14.json")
        kwargs.setdefault("feature_dir", root / "i3d_features")
        kwargs.setdefault("stride", 4.0)
        kwargs.setdefault("window", 16.0)
        kwargs.setdefault("subset_aliases", _THUMOS_SUBSETS)
        super().__init__(root, subset=subset, **kwargs)


class ActivityNet13(TALDataset):
    r"""ActivityNet 1.3 (Caba Heilbron et al., 2015) in the ActionFormer /
    OpenTAD I3D layout: :obj:`root/annotations/anet1.3_i3d_filtered.json`
    and :obj:`root/i3d_features/v_<video_id>.npy`; snippets of 16 frames
    every 16 frames at :obj:`default_fps` (25, as ActionFormer's config)
    unless the JSON gives an fps. Subsets :obj:`"training"` /
    :obj:`"validation"` (aliases :obj:`"train"` / :obj:`"val"`). Most methods
    resample every video to a fixed length: pass e.g. :obj:`max_snippets=192`
    (ActionFormer) or :obj:`100` (BMN, G-TAD) with
    :obj:`resample="interpolate"`.
    """

    def __init__(self, root: str | os.PathLike, subset: str = "training", **kwargs: Any):
        root = Path(root)
        kwargs.setdefault("annotation_file", root / "annotations" / "anet1.3_i3d_filtered.json")
        kwargs.setdefault("feature_dir", root / "i3d_features")
        kwargs.setdefault("feature_prefix", "v_")
        kwargs.setdefault("stride", 16.0)
        kwargs.setdefault("window", 16.0)
        kwargs.setdefault("default_fps", 25.0)
        kwargs.setdefault("subset_aliases", _ANET_SUBSETS)
        super().__init__(root, subset=subset, **kwargs)
