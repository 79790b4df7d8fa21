"""``tagraph info``: versions, optional packages, neighbour sampler, devices, configs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
from typing import Any

OPTIONAL = {
    "torch_scatter": "sparse extra: fused scatter kernels",
    "torch_sparse": "sparse extra: SparseTensor, native neighbour sampling",
    "pyg_lib": "native neighbour sampling",
    "matplotlib": "plot extra: tagraph plot / tagraph.viz",
    "tqdm": "progress bars",
    "hypothesis": "property-based tests",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info", help="versions, optional packages, sampler, devices, shipped configs",
        description="Print the environment tagraph runs in: versions, which optional packages "
        "are present, which sampler NeighborLoader uses, devices, methods and configs.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--keys", nargs="?", const="", default=None, metavar="METHOD",
                   help="list the config keys (type, what they do); with a METHOD also its "
                   "[model] keys and their defaults")
    p.set_defaults(func=run)
    return p


def collect() -> dict[str, Any]:
    """The information ``tagraph info`` prints, as a dict."""
    import numpy
    import torch
    import torch_geometric

    import tagraph
    from tagraph.engine.config import available_configs
    from tagraph.engine.runner import METHODS
    from tagraph.loader import has_native_sampler

    def version(name: str) -> str | None:
        if importlib.util.find_spec(name) is None:
            return None
        try:
            from importlib.metadata import version as v

            return v(name.replace("_", "-"))
        except Exception:
            return "present"

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                    for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return {
        "tagraph": tagraph.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "optional": {name: version(name) for name in OPTIONAL},
        "neighbor_sampler": "PyG native (pyg-lib / torch-sparse)" if has_native_sampler()
        else "tagraph UniformNeighborSampler (pure torch)",
        "devices": devices,
        "torch_threads": torch.get_num_threads(),
        "distributed_backends": [b for b, ok in (("gloo", torch.distributed.is_gloo_available()),
                                                 ("nccl", torch.distributed.is_nccl_available()))
                                 if ok] if torch.distributed.is_available() else [],
        "methods": sorted(METHODS),
        "configs": available_configs(),
    }


def config_keys(method: str = "") -> list[tuple[str, str, str]]:
    """``(key, type, description)`` of every documented config key; with a
    :obj:`method`, its ``[model]`` and ``[predict]`` keys with their defaults."""
    from tagraph.engine.schema import SCHEMA, _free_table_keys

    rows = [(k, spec.kind, spec.doc) for k, spec in SCHEMA.items()]
    if method:
        from tagraph.engine.runner import METHODS

        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; one of {sorted(METHODS)}")
        for table in ("model", "predict", "data.graph"):
            found = _free_table_keys({"method": method}, table)
            if found is None:
                continue
            names, defaults = found
            for n in sorted(names):
                if f"{table}.{n}" in SCHEMA or n == "detection":
                    continue
                d = defaults.get(n, "")
                rows.append((f"{table}.{n}", type(d).__name__ if n in defaults else "",
                             f"default {d!r}" if n in defaults else ""))
    rows.append(("model.detection.*", "", "weakly supervised: fields of CASDetectionConfig"))
    return rows


def run(args: argparse.Namespace) -> int:
    if args.keys is not None:
        try:
            rows = config_keys(args.keys)
        except ValueError as e:
            from tagraph.commands._common import fail

            return fail("info", str(e))
        if args.json:
            print(json.dumps([{"key": k, "type": t, "doc": d} for k, t, d in rows]))
            return 0
        w = max(len(k) for k, _, _ in rows)
        for k, t, d in rows:
            print(f"{k:<{w}}  {t:<5}  {d}")
        return 0
    info = collect()
    if args.json:
        print(json.dumps(info))
        return 0
    width = 20
    for key in ("tagraph", "python", "platform", "torch", "torch_geometric", "numpy"):
        print(f"{key:<{width}} {info[key]}")
    print("optional packages:")
    for name, v in info["optional"].items():
        print(f"  {name:<{width - 2}} {v or 'not installed':<14} {OPTIONAL[name]}")
    print(f"{'neighbour sampler':<{width}} {info['neighbor_sampler']}")
    print(f"{'devices':<{width}} {', '.join(info['devices'])}")
    print(f"{'torch threads':<{width}} {info['torch_threads']}")
    print(f"{'dist. backends':<{width}} {', '.join(info['distributed_backends']) or 'none'}")
    print(f"{'methods':<{width}} {', '.join(info['methods'])}")
    print("configs (tagraph train --config NAME):")
    for name in info["configs"]:
        print(f"  {name}")
    return 0
