r"""The documented config keys, their types and ranges (:data:`SCHEMA`), and
:func:`validate_config`.

A key that is neither in :data:`SCHEMA` nor an argument of the method's
model (``[model]``), graph builder (``[data.graph]``), synthetic generator
(``[data.synthetic]``) or predictor (``[predict]``) is an error naming the
file and the key, with a did-you-mean; so is a value of the wrong type
(``epochs = 2.7``, ``hidden_channels = "32"``, ``lr = "fast"``) or out of
range (``hidden_channels = 0``, ``lr = 1e6`` is allowed but ``lr = inf`` is
not). ``--set`` may set any such key, whether or not the file has it.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Key", "SCHEMA", "FREE_TABLES", "validate_config", "known_key", "key_default",
           "suggest"]


@dataclass(frozen=True)
class Key:
    r"""One documented key: its type (:obj:`"int"`, :obj:`"float"`,
    :obj:`"bool"`, :obj:`"str"`, :obj:`"list"`, :obj:`"any"`), a range or
    choice check, and a one-line description."""

    kind: str
    doc: str
    check: Callable[[Any], str | None] | None = None
    default: Any = None


def _choice(*values: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in values else f"must be one of {', '.join(map(repr, values))}"
    return check


def _at_least(lo: float, *, strict: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not math.isfinite(v):
            return "must be finite"
        ok = v > lo if strict else v >= lo
        return None if ok else f"must be {'>' if strict else '>='} {lo:g}"
    return check


def _open_unit(v: Any) -> str | None:
    return None if 0 < v < 1 else "must be in (0, 1)"


def _tiou(v: Any) -> str | None:
    if not v:
        return "must name at least one threshold"
    bad = [x for x in v if isinstance(x, bool) or not isinstance(x, (int, float))
           or not 0 < x <= 1]
    return f"thresholds must be numbers in (0, 1] ({bad[0]!r} is not)" if bad else None


def _betas(v: Any) -> str | None:
    ok = len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                             and 0 <= x < 1 for x in v)
    return None if ok else "must be two numbers in [0, 1)"


def _ints(v: Any) -> str | None:
    bad = [x for x in v if isinstance(x, bool) or not isinstance(x, int) or x < 0]
    return f"must be a list of integers >= 0 ({bad[0]!r} is not)" if bad else None


def _pattern(v: Any) -> str | None:
    if not v:
        return None
    from tagraph.data.features import check_feature_pattern

    try:
        check_feature_pattern(v)
    except ValueError as e:
        return str(e)
    return None


_POS_INT = _at_least(1)
_NONNEG_INT = _at_least(0)
_POS = _at_least(0, strict=True)
_NONNEG = _at_least(0)

#: Every documented key outside the free tables, dotted.
SCHEMA: dict[str, Key] = {
    "method": Key("str", "the method (tagraph info lists them)"),
    "seed": Key("int", "seed of the model's initialisation and of training", _NONNEG_INT),
    # data
    "data.dataset": Key("str", "synthetic, thumos14, activitynet13, json or wtalc_thumos14",
                        _choice("synthetic", "thumos14", "activitynet13", "json",
                                "wtalc_thumos14")),
    "data.root": Key("str", "data folder; relative paths below are looked up under it"),
    "data.annotations": Key("str", "ActivityNet-style annotation JSON ('' = preset's)"),
    "data.features": Key("str", "feature folder ('' = preset's)"),
    "data.feature_pattern": Key("str", "feature file name with {video} (and {stream})",
                                _pattern),
    "data.feature_stride": Key("float", "frames between snippets (0 = preset's)", _NONNEG),
    "data.feature_window": Key("float", "frames per snippet (0 = preset's)", _NONNEG),
    "data.fps": Key("float", "frame rate of JSON entries without one (0 = required)",
                    _NONNEG),
    "data.classes": Key("str", "class list file, one name a line ('' = sorted JSON labels)"),
    "data.train_subset": Key("str", "training subset, as named in the JSON"),
    "data.test_subset": Key("str", "test subset, as named in the JSON"),
    "data.val_fraction": Key("float", "fraction of training videos held out for "
                             "validation", _open_unit),
    "data.split_seed": Key("int", "seed of the validation split", _NONNEG_INT),
    "data.modality": Key("str", "rgb, flow or both", _choice("rgb", "flow", "both")),
    "data.max_snippets": Key("int", "resample longer videos to this many snippets (0 = off)",
                             _NONNEG_INT),
    "data.resample": Key("str", "uniform or interpolate", _choice("uniform", "interpolate")),
    "data.resample_eval": Key("bool", "max_snippets also resamples the validation and test "
                              "videos (false: they are read whole)"),
    "data.crop_snippets": Key("int", "random training crops of this many snippets (0 = off)",
                              _NONNEG_INT),
    "data.proposals_train": Key("str", "proposals of the training videos (P-GCN)"),
    "data.proposals_test": Key("str", "proposals of the test videos (P-GCN)"),
    "data.gt_as_fg": Key("bool", "ground-truth boxes as extra training proposals (P-GCN)"),
    "data.clicks": Key("str", "'background' (simulated), a click file or a folder"),
    "data.click_seed": Key("int", "seed of simulated clicks", _NONNEG_INT),
    "data.size": Key("any", "synthetic: 'small', 'full' or a size table"),
    "data.data_seed": Key("int", "synthetic: generator seed", _NONNEG_INT),
    "data.variant": Key("str", "synthetic: a feature geometry of SYNTHETIC_VARIANTS"),
    # optim
    "optim.name": Key("str", "sgd, adam or adamw", _choice("sgd", "adam", "adamw")),
    "optim.lr": Key("float", "learning rate", _POS),
    "optim.weight_decay": Key("float", "weight decay", _NONNEG),
    "optim.momentum": Key("float", "SGD momentum", _NONNEG),
    "optim.betas": Key("list", "Adam betas", _betas),
    # schedule
    "schedule.name": Key("str", "none, step, multistep or cosine",
                         _choice("none", "step", "multistep", "cosine")),
    "schedule.step_size": Key("int", "step: epochs between decays", _POS_INT),
    "schedule.gamma": Key("float", "step / multistep: decay factor", _POS),
    "schedule.milestones": Key("list", "multistep: epochs of the decays", _ints),
    "schedule.warmup_epochs": Key("int", "cosine: linear warm-up epochs", _NONNEG_INT),
    # train
    "train.epochs": Key("int", "training epochs", _POS_INT),
    "train.batch_size": Key("int", "videos (P-GCN: seed proposals) per batch", _POS_INT),
    "train.grad_clip": Key("float", "gradient-norm clip (0 = off)", _NONNEG),
    "train.amp": Key("bool", "mixed precision on CUDA"),
    "train.select": Key("str", "the record key that picks best.pt"),
    "train.mode": Key("str", "max or min of train.select", _choice("max", "min")),
    "train.num_neighbors": Key("list", "P-GCN: neighbours sampled per hop", _ints),
    "train.epoch_multiplier": Key("int", "P-GCN: passes over the seeds per epoch", _POS_INT),
    # predict / eval
    "predict.batch_size": Key("int", "videos per inference batch", _POS_INT),
    "eval.tiou": Key("list", "tIoU thresholds of the mAP", _tiou),
}

#: Tables whose keys are arguments of a function (checked against its signature).
FREE_TABLES = ("model", "data.graph", "data.synthetic", "predict")

_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
          "list": (list, tuple)}


_SYNONYMS = {"learning_rate": "optim.lr", "lr_rate": "optim.lr", "num_epochs": "train.epochs",
             "max_epochs": "train.epochs", "n_epochs": "train.epochs",
             "batchsize": "train.batch_size", "bs": "train.batch_size",
             "wd": "optim.weight_decay", "decay": "optim.weight_decay",
             "optimizer": "optim.name", "stride": "data.feature_stride",
             "window": "data.feature_window", "feature_dir": "data.features",
             "annotation_file": "data.annotations", "feature_prefix": "data.feature_pattern"}


def suggest(key: str, candidates: Any) -> str:
    r"""``"; did you mean 'x'?"`` for the closest of :obj:`candidates`, or ``""``."""
    candidates = list(candidates)
    synonym = _SYNONYMS.get(key.rsplit(".", 1)[-1])
    if synonym is not None and synonym in candidates:
        return f"; did you mean '{synonym}'?"
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _signature_keys(fn: Any, skip: int = 0) -> tuple[set[str], dict[str, Any], bool]:
    r"""Parameter names of :obj:`fn` (after the first :obj:`skip` positional
    ones), their defaults, and whether it takes ``**kwargs``."""
    params = list(inspect.signature(fn).parameters.values())
    names, defaults, var_kw = set(), {}, False
    for i, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
            continue
        if p.kind is p.VAR_POSITIONAL or i < skip or p.name == "self":
            continue
        names.add(p.name)
        if p.default is not p.empty:
            defaults[p.name] = p.default
    return names, defaults, var_kw


def _free_table_keys(cfg: Mapping[str, Any], table: str
                     ) -> tuple[set[str], dict[str, Any]] | None:
    r"""The accepted keys and their defaults of a free table, or :obj:`None`
    when they cannot be known (a user-registered method without a class)."""
    method = cfg.get("method")
    if table == "model":
        from tagraph.engine.runner import METHODS

        spec = METHODS.get(method)
        cls = getattr(spec, "model_class", None) if spec is not None else None
        if isinstance(cls, str):
            import tagraph.models

            cls = getattr(tagraph.models, cls, None)
        if cls is None:
            return None
        names, defaults, var_kw = _signature_keys(cls.__init__, skip=3)  # self, D, C
        extra = getattr(cls, "HYPERPARAMETERS", None)  # **kwargs models document theirs
        if var_kw and extra is None:
            return None
        if extra is not None:
            names |= set(extra)
            defaults = {**extra, **defaults}
        return (names - {"detection_config"}) | {"detection"}, defaults
    if table == "data.graph":
        from tagraph.data import proposal_graph, snippet_graph

        fns = [snippet_graph, proposal_graph]
        from tagraph.engine.runner import METHODS

        spec = METHODS.get(method)
        if spec is not None and spec.graph == "snippet":
            fns = [snippet_graph]
        elif spec is not None and spec.graph == "proposal":
            fns = [proposal_graph]
        elif spec is not None:
            return set(), {}  # the method reads the snippet sequence only
        names: set[str] = set()
        defaults: dict[str, Any] = {}
        for fn in fns:
            n, dflt, _ = _signature_keys(fn, skip=2)
            names |= n
            defaults.update(dflt)
        return names - {"video_id", "duration", "gt_segments", "gt_labels", "segments"}, defaults
    if table == "data.synthetic":
        from tagraph.data.synthetic import DEFAULTS, SYNTHETIC_SIZES

        names = set(DEFAULTS)
        for size in SYNTHETIC_SIZES.values():
            names |= set(size)
        return names, {}
    if table == "predict":
        if method != "pgcn":
            return {"batch_size"}, {"batch_size": 16}
        from tagraph.engine.pgcn import pgcn_predict
        from tagraph.models import PGCN

        a, da, _ = _signature_keys(pgcn_predict, skip=3)
        b, db, _ = _signature_keys(PGCN.predict)
        return (a | b) - {"device", "data", "batch"}, {**db, **da}
    return None


def _table_of(key: str) -> str | None:
    for t in sorted(FREE_TABLES, key=len, reverse=True):
        if key.startswith(t + "."):
            return t
    return None


def known_key(cfg: Mapping[str, Any], key: str) -> bool:
    r"""Whether :obj:`key` (dotted) is a documented key for :obj:`cfg`'s method."""
    if key in SCHEMA:
        return True
    table = _table_of(key)
    if table is None:
        return False
    rest = key[len(table) + 1:]
    if table == "model" and rest.startswith("detection."):
        return True  # checked against the model's detection config when built
    keys = _free_table_keys(cfg, table)
    return keys is None or rest in keys[0]


def key_default(cfg: Mapping[str, Any], key: str) -> Any:
    r"""The default value of a free-table key (for its type), or :obj:`None`."""
    table = _table_of(key)
    if table is None:
        return None
    keys = _free_table_keys(cfg, table)
    return None if keys is None else keys[1].get(key[len(table) + 1:])


def _type_name(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false",
            "str": "a string", "list": "a list"}.get(kind, kind)


def _check_type(kind: str, v: Any) -> bool:
    if kind == "any":
        return True
    if kind in ("int", "float") and isinstance(v, bool):
        return False
    return isinstance(v, _TYPES[kind])


def validate_config(cfg: Mapping[str, Any], source: str = "config",
                    origins: Mapping[str, str] | None = None) -> None:
    r"""Checks every key of :obj:`cfg`: known (:data:`SCHEMA` or an argument
    of the free tables' functions), of the documented type, in range.

    Args:
        cfg (Mapping): The config.
        source (str, optional): Where it came from (a file name), for messages.
        origins (Mapping[str, str], optional): Where single keys came from
            (e.g. ``"--set"``), overriding :obj:`source`.

    Raises:
        ConfigError: Naming the file, the key and what is wrong.
    """
    from tagraph.engine.config import ConfigError, flatten

    origins = origins or {}
    flat = flatten(cfg)
    for key, v in flat.items():
        where = origins.get(key, source)
        if key == "base":
            continue
        if key in SCHEMA:
            spec = SCHEMA[key]
            if v == "" and spec.kind in ("int", "float"):
                continue
            if not _check_type(spec.kind, v):
                raise ConfigError(f"{where}: config key '{key}' must be {_type_name(spec.kind)} "
                                  f"({spec.doc}), got {v!r}")
            if spec.check is not None:
                problem = spec.check(v)
                if problem:
                    raise ConfigError(f"{where}: config key '{key}' {problem}, got {v!r}")
            continue
        table = _table_of(key)
        if table is None:
            raise ConfigError(f"{where}: unknown config key '{key}'{suggest(key, SCHEMA)} "
                              "('tagraph info --keys' lists them)")
        rest = key[len(table) + 1:]
        if table == "model" and rest.startswith("detection."):
            continue
        keys = _free_table_keys(cfg, table)
        if keys is None:
            continue
        names, defaults = keys
        if rest not in names:
            what = {"model": f"an argument of method '{cfg.get('method')}'s model",
                    "data.graph": "a graph-builder argument",
                    "data.synthetic": "a SyntheticTAL size field",
                    "predict": "a prediction argument"}[table]
            raise ConfigError(f"{where}: unknown config key '{key}' (not {what})"
                              f"{suggest(key, [f'{table}.{n}' for n in names])}")
        _check_free_value(key, v, defaults.get(rest), where)
    method = cfg.get("method")
    if method is not None:
        from tagraph.engine.runner import METHODS

        if method not in METHODS:
            raise ConfigError(f"{origins.get('method', source)}: config key 'method' must be "
                              f"one of {sorted(METHODS)}, got {method!r}"
                              f"{suggest(str(method), METHODS)}")


def _check_free_value(key: str, v: Any, default: Any, where: str) -> None:
    from tagraph.engine.config import ConfigError

    if default is None or isinstance(default, bool) and isinstance(v, bool):
        return
    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: config key '{key}' must be true or false, got {v!r}")
        return
    if isinstance(default, int):
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and type(default) is int and v.is_integer():
                return
            raise ConfigError(f"{where}: config key '{key}' must be an integer, got {v!r}")
        if "channels" in key.rsplit(".", 1)[-1] and v < 1:
            raise ConfigError(f"{where}: config key '{key}' must be >= 1, got {v!r}")
        return
    if isinstance(default, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}: config key '{key}' must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ConfigError(f"{where}: config key '{key}' must be finite, got {v!r}")
        return
    if isinstance(default, str) and not isinstance(v, str):
        raise ConfigError(f"{where}: config key '{key}' must be a string, got {v!r}")
