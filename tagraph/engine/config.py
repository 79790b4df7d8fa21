"""TOML configs: loading the shipped per-method/per-dataset files, ``--set`` overrides, dumping.

A config is a nested ``dict`` of TOML values. Shipped configs live in
``tagraph/configs/<method>/<dataset>.toml`` and are addressed as
``"<method>/<dataset>"`` (for example ``"pgcn/thumos14"``); any other string is
a path to a TOML file. Overrides use dotted keys (``optim.lr=0.001``) whose
values are parsed as TOML (``1e-3``, ``true``, ``[1, 2]``, ``"text"``), falling
back to a bare string. A key that does not exist is an error listing the keys
that do, so a typo never silently adds an unused setting.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "available_configs",
    "load_config",
    "apply_overrides",
    "config_diff",
    "dumps_toml",
    "flatten",
]


class ConfigError(ValueError):
    """A config file or override that cannot be used."""


def _config_root() -> Path:
    return Path(str(resources.files("tagraph") / "configs"))


def available_configs() -> list[str]:
    """Names of the configs shipped with the package, as ``"<method>/<dataset>"``."""
    root = _config_root()
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("*/*.toml"))


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        return path
    shipped = _config_root() / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    names = ", ".join(available_configs()) or "(none)"
    raise ConfigError(f"unknown config '{name_or_path}': not a file, and not one of: {names}")


def load_config(name_or_path: str | Path, overrides: Iterable[str] = (), *,
                validate: bool = True) -> dict[str, Any]:
    """Loads a config by shipped name or path and applies ``key=value`` overrides.

    A config may name another one to start from with a top-level
    ``base = "<method>/<dataset>"`` (or a path relative to it); its own keys
    replace the base's, table by table. Every key is then checked against
    the documented ones (:func:`tagraph.engine.schema.validate_config`): an
    unknown key or a value of the wrong type or range is an error naming the
    file (or ``--set``) and the key.

    Args:
        name_or_path (str or Path): A shipped name such as ``"pgcn/thumos14"`` or a path.
        overrides (Iterable[str], optional): Dotted ``key=value`` strings.
        validate (bool, optional): Check keys and values. (default: :obj:`True`)

    Returns:
        dict: The resolved config.
    """
    cfg, origins = _load_file(_resolve(name_or_path))
    overrides = list(overrides)
    cfg = apply_overrides(cfg, overrides)
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        origins[key] = f"--set {item}"
    if validate:
        from tagraph.engine.schema import validate_config

        validate_config(cfg, str(_resolve(name_or_path)), origins)
    return cfg


def _load_file(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """A config file (its ``base`` merged under it) and the file each key came from."""
    if path.resolve() in seen:
        raise ConfigError(f"config file '{path}': 'base' chain loops back to it")
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file '{path}' is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text") from None
    base = cfg.pop("base", None)
    origins = {k: str(path) for k in flatten(cfg)}
    if base is None:
        return cfg, origins
    if not isinstance(base, str):
        raise ConfigError(f"{path}: config key 'base' must be a config name or path, got "
                          f"{base!r}")
    try:
        base_path = _resolve(path.parent / base if base.endswith(".toml") else base)
    except ConfigError as e:
        raise ConfigError(f"{path}: config key 'base': {e}") from None
    base_cfg, base_origins = _load_file(base_path, (*seen, path.resolve()))
    return _merge(base_cfg, cfg), {**base_origins, **origins}


def _merge(base: dict, top: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def flatten(cfg: Mapping, prefix: str = "") -> dict[str, Any]:
    """Flattens a nested config into ``{"a.b.c": value}``."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def apply_overrides(cfg: Mapping, overrides: Iterable[str]) -> dict[str, Any]:
    """Returns a copy of ``cfg`` with dotted ``key=value`` overrides applied.

    A key the config does not carry is added when it is documented for the
    config's method (:func:`tagraph.engine.schema.known_key`), e.g.
    ``data.crop_snippets=64`` or ``model.detection.class_threshold=0.2``.

    Raises:
        ConfigError: When an override is malformed or names a key that is
            neither in the config nor documented (with a did-you-mean and the
            list of valid keys).
    """
    from tagraph.engine.schema import SCHEMA, key_default, known_key, suggest

    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"override '{item}': '{key}' is not a dotted key")
        node: Any = out
        present = True
        for part in parts[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(part, {}), dict):
                present = False
                break
            if part not in node:
                present = False
                break
            node = node[part]
        present = present and isinstance(node, dict) and parts[-1] in node
        if not present:
            if not known_key(out, key):
                valid = sorted(set(flatten(out)) | set(SCHEMA))
                raise ConfigError(f"unknown config key '{key}'{suggest(key, valid)}; valid "
                                  f"keys: {', '.join(valid)}")
            node = out
            for part in parts[:-1]:
                if not isinstance(node.get(part, {}), dict):
                    raise ConfigError(f"'{'.'.join(parts[:-1])}' is not a table")
                node = node.setdefault(part, {})
            spec = SCHEMA.get(key)
            kind = spec.kind if spec is not None else None
            default = key_default(out, key)
            value = _parse_value(text.strip())
            if (kind == "float" or isinstance(default, float)) and isinstance(value, int) \
                    and not isinstance(value, bool):
                value = float(value)
            node[parts[-1]] = value
            continue
        old = node[parts[-1]]
        if isinstance(old, dict):
            raise ConfigError(f"'{key}' is a table; set one of its keys instead")
        value = _parse_value(text.strip())
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if old is not None and not isinstance(value, type(old)) and not (
            isinstance(old, (list, str)) or isinstance(value, str) and isinstance(old, str)
        ):
            raise ConfigError(
                f"--set {item}: config key '{key}' expects {type(old).__name__}, got {value!r}"
            )
        node[parts[-1]] = value
    return out


def config_diff(a: Mapping, b: Mapping) -> list[str]:
    """Dotted keys whose values differ between two configs (added or removed too)."""
    fa, fb = flatten(a), flatten(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, _MISSING) != fb.get(k, _MISSING))


_MISSING = object()


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        raise ConfigError("TOML has no null value; leave the key out instead")
    return _toml_value(str(v))


def dumps_toml(cfg: Mapping) -> str:
    """Serialises a nested config to TOML text (``tomllib.loads`` reads it back equal)."""
    lines: list[str] = []

    def table(node: Mapping, name: str) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in node.items() if isinstance(v, Mapping)}
        if name and (scalars or not tables):
            lines.append(f"[{name}]")
        for k, v in scalars.items():
            if v is not None:
                lines.append(f"{_key(k)} = {_toml_value(v)}")
        if scalars:
            lines.append("")
        for k, v in tables.items():
            table(v, f"{name}.{_key(k)}" if name else _key(k))

    table(cfg, "")
    return "\n".join(lines).rstrip() + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)
