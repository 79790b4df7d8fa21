r"""A generic, method-agnostic training loop.

The :class:`Trainer` knows nothing about temporal action localization: it calls
``model.training_step(batch) -> (loss, logs)`` on every mini-batch and, when a
validation loader is given, ``model.validation_step(batch) -> dict`` (averaged
over the loader). Everything else (seeding, progress bar, device placement,
gradient clipping, LR scheduling, atomic checkpoints, resume, checkpoint
selection on a validation metric, non-finite loss detection) lives here once.

Checkpoints (``last.pt`` and ``best.pt`` in :obj:`out_dir`) hold the model,
optimizer and scheduler states, epoch, global step, the RNG states of
:mod:`torch`, :mod:`numpy` and :mod:`random`, the history, the best value so far
and the run's :obj:`config`. They contain only tensors and plain Python values,
so they load with ``torch.load(..., weights_only=True)``.

``best.pt`` is written *before* the ``last.pt`` that names it as the best epoch, so a kill
between the two leaves a ``best.pt`` that is newer than ``last.pt`` (the resumed run
redoes that epoch), never one that is older than what ``last.pt`` and ``metrics.jsonl``
claim. On resume the pair is checked. Every checkpoint read goes through
:func:`read_checkpoint` and :func:`load_model_weights`, which turn unreadable files,
foreign files and weights of another method or feature dimension into one-line
:class:`CheckpointError` messages naming the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tagraph.engine.config import flatten
from tagraph.io.atomic import atomic_open, atomic_save_torch

_LOG = logging.getLogger("tagraph.engine")

__all__ = [
    "Trainer",
    "seed_everything",
    "move_to_device",
    "load_checkpoint",
    "read_checkpoint",
    "load_model_weights",
    "CheckpointError",
    "ConfigMismatchError",
    "NonFiniteLossError",
    "TrainingInterrupted",
]


class NonFiniteLossError(FloatingPointError):
    r"""Raised when a training loss is NaN or infinite."""


class ConfigMismatchError(ValueError):
    r"""Raised when a checkpoint's config differs from the current run's config."""


class CheckpointError(ValueError):
    r"""A checkpoint that cannot be used: unreadable, not a tagraph checkpoint, weights
    of another method or feature dimension, or a ``best.pt`` / ``last.pt`` pair that
    disagree. The message is one line and names the file."""


class TrainingInterrupted(KeyboardInterrupt):
    r"""Ctrl-C during :meth:`Trainer.fit`; says what is saved and how to continue.

    Attributes:
        out_dir (Path or None): The run's folder.
        epoch (int): Completed (and saved) epochs.
        epochs (int): Epochs asked for.
    """

    def __init__(self, out_dir: Path | None, epoch: int, epochs: int) -> None:
        self.out_dir, self.epoch, self.epochs = out_dir, epoch, epochs
        if out_dir is None:
            msg = f"interrupted after {epoch} of {epochs} epochs (no out_dir: nothing saved)"
        elif epoch == 0:
            msg = (f"interrupted during epoch 1 of {epochs}; no checkpoint yet in '{out_dir}' "
                   "(--resume starts from the beginning)")
        else:
            msg = (f"interrupted after {epoch} of {epochs} epochs; '{out_dir / 'last.pt'}' "
                   f"holds epoch {epoch}: continue with --resume --out {out_dir}")
        super().__init__(msg)


def seed_everything(seed: int) -> None:
    r"""Seeds :mod:`random`, :mod:`numpy` and :mod:`torch` (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (global RNG used by user code)
    torch.manual_seed(seed)


def move_to_device(batch: Any, device: torch.device | str) -> Any:
    r"""Moves a batch (PyG :class:`~torch_geometric.data.Data` / ``Batch``,
    tensor, or nested list / tuple / dict of those) to :obj:`device`."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return type(batch)({k: move_to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    if hasattr(batch, "to") and callable(batch.to):
        return batch.to(device)
    return batch


def _config_diff(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None
) -> dict[str, tuple[Any, Any]]:
    r"""Returns ``{dotted.key: (value_in_a, value_in_b)}`` for every key whose
    value differs between two (nested) configs; a missing key reads as
    ``'<missing>'``."""
    fa, fb = flatten(a or {}), flatten(b or {})
    missing = "<missing>"
    diff = {}
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, missing), fb.get(key, missing)
        if isinstance(va, tuple):
            va = list(va)
        if isinstance(vb, tuple):
            vb = list(vb)
        if va != vb:
            diff[key] = (fa.get(key, missing), fb.get(key, missing))
    return diff


def _format_diff(diff: dict[str, tuple[Any, Any]], names: tuple[str, str]) -> str:
    lines = [f"  {k}: {names[0]}={a!r}, {names[1]}={b!r}" for k, (a, b) in diff.items()]
    return "\n".join(lines)


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "random": list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_torch(obj, path)


def _atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        f.write(text)


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"  # torch's legacy (non-zip) format starts with a pickle protocol byte
#: Keys every checkpoint of :class:`Trainer` holds (a resume needs all of them).
TRAINER_KEYS = ("model", "optimizer", "epoch", "step", "rng")


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else ""
    line = line if len(line) <= limit else line[:limit] + "..."
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


def read_checkpoint(
    path: str | os.PathLike,
    *,
    map_location: str | torch.device | None = "cpu",
    require: tuple[str, ...] = ("model",),
    mmap: bool = False,
) -> dict[str, Any]:
    r"""Reads a tagraph checkpoint file, checked.

    Raises :class:`FileNotFoundError` when the file is missing and a one-line
    :class:`CheckpointError` naming the file when it is empty, truncated or corrupt,
    not a PyTorch file, a PyTorch file holding Python objects (only tensors and plain
    values are allowed), or a PyTorch file that is not a tagraph checkpoint (not a dict,
    or without the keys :obj:`require`, e.g. ``("model", "config")``).

    Args:
        path (str or os.PathLike): The checkpoint.
        map_location: Passed to :func:`torch.load`. (default: :obj:`"cpu"`)
        require (tuple[str], optional): Keys the checkpoint must have.
            (default: :obj:`("model",)`)
        mmap (bool, optional): Memory-map the tensors (reads only what is used, e.g.
            the epoch of a ``best.pt``). (default: :obj:`False`)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f"checkpoint '{path}' is empty (truncated or corrupt)")
    zipped = head == _ZIP_MAGIC
    if not zipped and not head.startswith(_PICKLE_MAGIC):
        raise CheckpointError(f"'{path}' is not a tagraph checkpoint (not a PyTorch file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap and zipped)
    except Exception as e:  # noqa: BLE001 - re-raised as one line naming the file
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise CheckpointError(
                f"'{path}' is not a tagraph checkpoint (it holds Python objects, not only "
                "tensors and plain values)") from e
        detail = _first_line(e)
        if "PytorchStreamReader" in detail or "miniz" in detail or "zip archive" in detail:
            detail = "not a complete PyTorch zip archive"
        raise CheckpointError(f"checkpoint '{path}' is truncated or corrupt ({detail})") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"'{path}' is not a tagraph checkpoint (a PyTorch file holding "
                              f"a {type(ckpt).__name__}, not a dict)")
    missing = [k for k in require if k not in ckpt]
    if missing:
        keys = ", ".join(map(repr, list(ckpt)[:6])) + (", ..." if len(ckpt) > 6 else "")
        raise CheckpointError(f"'{path}' is not a tagraph checkpoint (no {missing[0]!r} entry; "
                              f"it has {keys or 'no keys'})")
    if "model" in require and not (isinstance(ckpt["model"], Mapping) and all(
            isinstance(v, Tensor) for v in ckpt["model"].values())):
        raise CheckpointError(f"'{path}' is not a tagraph checkpoint (its 'model' entry is not "
                              "a state dict of tensors)")
    return ckpt


def _axis_dim(own: tuple[int, ...], theirs: tuple[int, ...], dim: int) -> int | None:
    """The checkpoint's size on the first axis where :obj:`own` has :obj:`dim` and the
    two shapes differ."""
    if len(own) != len(theirs):
        return None
    for a, b in zip(own, theirs):
        if a == dim and a != b:
            return b
    return None


def check_checkpoint_method(ckpt: Mapping[str, Any], path: str | os.PathLike,
                            method: str | None) -> str | None:
    r"""Raises a one-line :class:`CheckpointError` when the checkpoint's config names
    another method than :obj:`method` (call it before building the model: the other
    method's ``[model]`` keys may not fit). Returns the stored method."""
    cfg = ckpt.get("config") or {}
    stored = cfg.get("method") if isinstance(cfg, Mapping) else None
    if method is not None and stored is not None and stored != method:
        raise CheckpointError(f"checkpoint '{path}' was trained with method '{stored}', but "
                              f"the config asks for method '{method}' (key 'method')")
    return stored


def load_model_weights(
    model: nn.Module,
    ckpt: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    method: str | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
) -> None:
    r"""Loads ``ckpt["model"]`` into :obj:`model`; a mismatch becomes one
    :class:`CheckpointError` line naming the checkpoint and what differs.

    Args:
        model (torch.nn.Module): The model built for the current data and config.
        ckpt (Mapping): A checkpoint from :func:`read_checkpoint`.
        path (str or os.PathLike): The checkpoint file (for messages).
        method (str, optional): The method the model was built for; compared with the
            checkpoint config's ``method``. (default: :obj:`None`)
        in_channels (int, optional): Feature dimension of the data. (default:
            ``model.in_channels`` when the model has one)
        num_classes (int, optional): Number of classes of the data. (default:
            ``model.num_classes`` when the model has one)
    """
    theirs = ckpt["model"]
    stored = check_checkpoint_method(ckpt, path, method)
    in_channels = in_channels if in_channels is not None else getattr(model, "in_channels", None)
    num_classes = num_classes if num_classes is not None else getattr(model, "num_classes", None)
    own = model.state_dict()
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    if missing or unexpected:
        what = f"method '{method or stored}'" if (method or stored) else \
            f"{type(model).__name__}"
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing, e.g. '{missing[0]}'")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. '{unexpected[0]}'")
        raise CheckpointError(f"checkpoint '{path}' does not fit the model of {what} "
                              f"(weights: {'; '.join(parts)}); was it trained with another "
                              "method or model config?")
    diffs = [(k, tuple(theirs[k].shape), tuple(v.shape)) for k, v in own.items()
             if tuple(theirs[k].shape) != tuple(v.shape)]
    if diffs:
        for dim, text in (
            (in_channels, "was trained on features of dimension {found}, but the data's "
             "features (field 'features') have dimension {dim}"),
            (num_classes, "was trained with {found} classes, but the data has {dim}"),
        ):
            if dim is None:
                continue
            for _k, t_shape, o_shape in diffs:
                found = _axis_dim(o_shape, t_shape, int(dim))
                if found is not None:
                    raise CheckpointError(f"checkpoint '{path}' " + text.format(found=found,
                                                                                dim=dim))
        k, t_shape, o_shape = diffs[0]
        raise CheckpointError(f"checkpoint '{path}': weight '{k}' has shape {list(t_shape)}, the "
                              f"model built for the data expects {list(o_shape)} "
                              f"({len(diffs)} weight(s) differ)")
    model.load_state_dict(theirs)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    map_location: str | torch.device | None = "cpu",
    strict_config: bool = True,
    require: tuple[str, ...] = ("model",),
) -> dict[str, Any]:
    r"""Loads a :class:`Trainer` checkpoint and, if :obj:`model` is given, its weights.

    Args:
        path (str or os.PathLike): The checkpoint file.
        model (torch.nn.Module, optional): Model to load the weights into.
        config (dict, optional): The expected config. When given (or when the
            model has a ``config`` attribute) and it differs from the
            checkpoint's, a :class:`ConfigMismatchError` lists the differing
            keys (a warning instead if :obj:`strict_config=False`).
            (default: :obj:`None`)
        map_location: Passed to :func:`torch.load`. (default: :obj:`"cpu"`)
        strict_config (bool, optional): Raise on config mismatch.
            (default: :obj:`True`)
        require (tuple[str], optional): Keys the checkpoint must have (see
            :func:`read_checkpoint`). (default: :obj:`("model",)`)

    Raises :class:`CheckpointError` (one line naming the file) for a file that is
    not a readable tagraph checkpoint or whose weights do not fit :obj:`model`.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, map_location=map_location, require=require)
    if config is None and model is not None:
        config = getattr(model, "config", None)
    if config is not None:
        diff = _config_diff(ckpt.get("config"), config)
        if diff:
            msg = (
                f"checkpoint '{path}' was written with a different config; "
                f"{len(diff)} key(s) differ:\n" + _format_diff(diff, ("checkpoint", "current"))
            )
            if strict_config:
                raise ConfigMismatchError(msg)
            import warnings

            warnings.warn(msg, stacklevel=2)
    if model is not None:
        load_model_weights(model, ckpt, path)
    return ckpt


class Trainer:
    r"""A generic training loop with seeded, resumable, atomic checkpointing.

    The model must implement ``training_step(batch) -> (loss, logs)``, where
    :obj:`loss` is a scalar tensor and :obj:`logs` a ``dict[str, float]``; it may
    implement ``validation_step(batch) -> dict[str, float]``.

    .. code-block:: python

        trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01),
                          out_dir="runs/pgcn", seed=0, config=cfg)
        history = trainer.fit(train_loader, epochs=30, val_loader=val_loader,
                              select="val_loss", mode="min")
        load_checkpoint("runs/pgcn/best.pt", model)

    Args:
        model (torch.nn.Module): The model.
        optimizer (torch.optim.Optimizer): The optimizer.
        scheduler (optional): An LR scheduler stepped once per epoch
            (:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` receives the
            selection metric). (default: :obj:`None`)
        device (str or torch.device, optional): Where to train; batches are
            moved with ``.to(device)``. (default: :obj:`"cpu"`)
        out_dir (str or os.PathLike, optional): Where ``last.pt``, ``best.pt``
            and ``metrics.jsonl`` go; nothing is written when :obj:`None`.
            (default: :obj:`None`)
        seed (int, optional): Seed of :mod:`random`, :mod:`numpy` and
            :mod:`torch` at the start of :meth:`fit`. (default: :obj:`0`)
        grad_clip (float, optional): Max global gradient norm.
            (default: :obj:`None`)
        progress (bool, optional): Show a :mod:`tqdm` progress bar.
            (default: :obj:`True`)
        config (dict, optional): The run's configuration, stored in every
            checkpoint and compared on resume. Defaults to ``model.config``
            when the model has one. (default: :obj:`None`)
        amp (bool, optional): Automatic mixed precision for the training
            step (float16 with gradient scaling on CUDA, bfloat16 on CPU).
            (default: :obj:`False`)
        distributed (bool, optional): Wrap the model in
            :class:`~torch.nn.parallel.DistributedDataParallel` (gradients
            averaged over ranks; epoch metrics averaged over ranks; only rank 0
            writes files). :obj:`None` means "when a process group with more
            than one rank is initialised". (default: :obj:`None`)

    Every epoch's record is also logged (logger ``tagraph.engine``, level
    INFO), and a loader whose ``sampler`` has ``set_epoch`` (e.g.
    :class:`~torch.utils.data.DistributedSampler`) gets the epoch number
    before each epoch, so shuffling is reproducible on resume.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: Any | None = None,
        device: str | torch.device = "cpu",
        out_dir: str | os.PathLike | None = None,
        seed: int = 0,
        grad_clip: float | None = None,
        progress: bool = True,
        config: dict[str, Any] | None = None,
        amp: bool = False,
        distributed: bool | None = None,
    ) -> None:
        from tagraph.engine.distributed import TrainingStep, dist_info

        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.amp = bool(amp)
        info = dist_info()
        self.distributed = info.enabled if distributed is None else bool(distributed)
        self.is_main = info.rank == 0
        self._step_fn: Callable[[Any], tuple[Tensor, dict[str, float]]] = model.training_step
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._step_fn = DistributedDataParallel(
                TrainingStep(self.model), device_ids=ids, find_unused_parameters=True)
        self._scaler = (torch.amp.GradScaler("cuda")
                        if self.amp and self.device.type == "cuda" else None)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.seed = seed
        self.grad_clip = grad_clip
        self.progress = progress
        if config is None:
            config = getattr(model, "config", None)
        self.config: dict[str, Any] = dict(config) if config is not None else {}
        self.epoch = 0  # number of completed epochs
        self.step = 0  # number of optimizer steps taken
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch: int | None = None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.model.__class__.__name__}, "
            f"device={self.device}, out_dir={self.out_dir}, seed={self.seed})"
        )

    # Checkpoints ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "rng": _rng_state(),
            "config": self.config,
            "history": self.history,
            **({"scaler": self._scaler.state_dict()} if self._scaler is not None else {}),
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        r"""Writes the full training state to :obj:`path` atomically."""
        _atomic_torch_save(self.state_dict(), Path(path))

    def load_checkpoint(self, path: str | os.PathLike, *, strict_config: bool = True) -> None:
        r"""Restores the full training state (model, optimizer, scheduler,
        counters, RNG states, history) from :obj:`path`."""
        ckpt = load_checkpoint(
            path, self.model, config=self.config, map_location=self.device,
            strict_config=strict_config, require=TRAINER_KEYS,
        )
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch = int(ckpt["epoch"])
        self.step = int(ckpt["step"])
        self.history = list(ckpt.get("history", []))
        self.best_value = ckpt.get("best_value")
        self.best_epoch = ckpt.get("best_epoch")
        if self._scaler is not None and ckpt.get("scaler") is not None:
            self._scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])

    # Loops ------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, loader: Iterable) -> dict[str, float]:
        r"""Averages ``model.validation_step`` over :obj:`loader`; keys are
        prefixed with ``val_``."""
        if not hasattr(self.model, "validation_step"):
            raise AttributeError(
                f"{self.model.__class__.__name__} has no 'validation_step'; pass val_fn instead"
            )
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            logs = self.model.validation_step(move_to_device(batch, self.device))
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        self.model.train(was_training)
        return {
            (k if k.startswith("val_") else f"val_{k}"): v / max(n, 1) for k, v in sums.items()
        }

    def _train_epoch(self, loader: Iterable, epoch: int, epochs: int) -> dict[str, float]:
        self.model.train()
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        bar = None
        if self.progress and self.is_main:
            # The bar is updated by hand and never wraps the loader: tqdm.auto's bar calls
            # iter(loader) once more in its constructor, and every DataLoader iterator
            # draws a seed from torch's global RNG, so a wrapped loader trained
            # differently with and without --quiet.
            from tqdm.auto import tqdm

            try:
                total: int | None = len(loader)  # type: ignore[arg-type]
            except TypeError:
                total = None
            bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                       dynamic_ncols=True)
        try:
            return self._run_epoch(loader, epoch, bar)
        finally:
            if bar is not None:
                bar.close()

    def _run_epoch(self, loader: Iterable, epoch: int, bar: Any) -> dict[str, float]:
        sums: dict[str, float] = {}
        n = 0
        for i, batch in enumerate(loader):
            batch = move_to_device(batch, self.device)
            if self.amp:
                dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
                ctx: Any = torch.autocast(self.device.type, dtype=dtype)
            else:
                ctx = contextlib.nullcontext()
            with ctx:
                loss, logs = self._step_fn(batch)
            if not torch.isfinite(loss.detach()).all():
                where = ""
                if self.out_dir is not None and (self.out_dir / "last.pt").exists():
                    where = f"; the last good checkpoint is kept at '{self.out_dir / 'last.pt'}'"
                lr = self.optimizer.param_groups[0]["lr"]
                clip = "off" if self.grad_clip is None else f"{self.grad_clip:g}"
                raise NonFiniteLossError(
                    f"non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}, "
                    f"step {self.step + 1} (batch {i + 1} of the epoch): lower the learning "
                    f"rate (config key optim.lr, now {lr:g}) or clip gradients (train.grad_clip, "
                    f"now {clip}){where}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            if self._scaler is not None:
                self._scaler.scale(loss).backward()
                self._scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            if self._scaler is not None:
                self._scaler.step(self.optimizer)
                self._scaler.update()
            else:
                self.optimizer.step()
            self.step += 1
            n += 1
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            for k, v in logs.items():
                if k != "loss":
                    sums[k] = sums.get(k, 0.0) + float(v)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss'] / n:.4f}", refresh=False)
        if n == 0:
            raise ValueError("the training loader yielded no batches")
        out = {k: v / n for k, v in sums.items()}
        if self.distributed:
            from tagraph.engine.distributed import all_reduce_mean

            out = all_reduce_mean(out, self.device)
        return out

    def fit(
        self,
        train_loader: Iterable,
        epochs: int,
        *,
        val_loader: Iterable | None = None,
        val_fn: Callable[[nn.Module], dict[str, float]] | None = None,
        select: str = "val_loss",
        mode: str = "min",
        resume: bool = False,
    ) -> list[dict[str, Any]]:
        r"""Trains until :obj:`epochs` epochs are complete.

        Args:
            train_loader (Iterable): Yields training batches.
            epochs (int): Total number of epochs (including resumed ones).
            val_loader (Iterable, optional): Batches for
                ``model.validation_step``; its averaged logs are recorded as
                ``val_<key>``. (default: :obj:`None`)
            val_fn (Callable, optional): ``val_fn(model) -> dict`` called after
                every epoch (model in eval mode, no grad), e.g. validation mAP.
                (default: :obj:`None`)
            select (str, optional): The record key deciding ``best.pt``. With
                no validation at all, the training ``loss`` is used.
                (default: :obj:`"val_loss"`)
            mode (str, optional): :obj:`"min"` or :obj:`"max"`.
                (default: :obj:`"min"`)
            resume (bool, optional): Continue from ``out_dir/last.pt`` if it
                exists. (default: :obj:`False`)

        Returns:
            The history: one dict per epoch (``epoch``, ``step``, ``lr``,
            ``loss``, training logs, validation metrics, ``time``).
        """
        if mode not in ("min", "max"):
            raise ValueError(f"'mode' must be 'min' or 'max', got {mode!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"the number of epochs (config key train.epochs) must be an "
                             f"integer >= 1, got {epochs!r}")
        epochs = int(epochs)
        has_val = val_loader is not None or val_fn is not None
        if not has_val:
            select = "loss"
        last = self.out_dir / "last.pt" if self.out_dir is not None else None
        if resume and last is None:
            raise ValueError("resume=True needs an 'out_dir'")
        self._ghost_best: int | None = None
        if resume and last is not None and last.exists():
            self.load_checkpoint(last)
            self._check_best_pair(last)
            self._saved_epoch = self.epoch
            # Drop metric lines of epochs that never reached a checkpoint.
            if self.is_main:
                self._rewrite_metrics()
        else:
            seed_everything(self.seed)
            self.epoch, self.step, self.history = 0, 0, []
            self.best_value, self.best_epoch = None, None
            self._saved_epoch = 0
            if self.out_dir is not None and self.is_main:
                best = self.out_dir / "best.pt"
                if best.exists():  # of an earlier run in this folder (or of an epoch 1 that
                    best.unlink()  # was killed before its last.pt): never ours to keep
                self._rewrite_metrics()
        try:
            self._fit_epochs(train_loader, epochs, val_loader, val_fn, select, mode)
        except KeyboardInterrupt as e:
            if isinstance(e, TrainingInterrupted):
                raise
            raise TrainingInterrupted(self.out_dir if self.is_main else None,
                                      self._saved_epoch, epochs) from e
        return self.history

    def _check_best_pair(self, last: Path) -> None:
        r"""After loading :obj:`last`: ``best.pt`` must hold the epoch that
        ``last.pt`` names as the best, or a newer one (killed between writing
        ``best.pt`` and ``last.pt``: that epoch is redone and rewrites it)."""
        best = last.with_name("best.pt")
        on_disk = None
        if best.exists():
            on_disk = int(read_checkpoint(best, require=("model", "epoch"), mmap=True)["epoch"])
        if on_disk is not None and on_disk > self.epoch:
            _LOG.info("'%s' holds epoch %d, newer than '%s' (epoch %d): the run was stopped "
                      "between the two writes; epoch %d is redone", best, on_disk, last,
                      self.epoch, on_disk)
            self._ghost_best = on_disk
            return
        if on_disk == self.best_epoch:
            return
        if on_disk is None:
            raise CheckpointError(f"checkpoint '{best}' is missing, but '{last}' names epoch "
                                  f"{self.best_epoch} as the best; restore it or start again "
                                  "without --resume")
        raise CheckpointError(f"checkpoint '{best}' holds epoch {on_disk}, but '{last}' "
                              f"(epoch {self.epoch}) names epoch {self.best_epoch} as the best; "
                              "the two are from different runs: restore the pair or start "
                              "again without --resume")

    def _fit_epochs(self, train_loader: Iterable, epochs: int, val_loader: Iterable | None,
                    val_fn: Callable[[nn.Module], dict[str, float]] | None, select: str,
                    mode: str) -> None:
        for epoch in range(self.epoch, epochs):
            t0 = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            record: dict[str, Any] = {"epoch": epoch + 1}
            record.update(self._train_epoch(train_loader, epoch, epochs))
            if val_loader is not None:
                record.update(self.validate(val_loader))
            if val_fn is not None:
                was_training = self.model.training
                self.model.eval()
                with torch.no_grad():
                    record.update({k: float(v) for k, v in val_fn(self.model).items()})
                self.model.train(was_training)
            if select not in record:
                raise KeyError(
                    f"selection metric {select!r} is not among the epoch's records "
                    f"{sorted(record)}"
                )
            if self.scheduler is not None:
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(record[select])
                else:
                    self.scheduler.step()
            record.update(step=self.step, lr=lr, time=time.perf_counter() - t0)
            value = float(record[select])
            improved = math.isfinite(value) and (
                self.best_value is None
                or (value < self.best_value if mode == "min" else value > self.best_value)
            )
            if improved:
                self.best_value, self.best_epoch = value, epoch + 1
            record["best_epoch"] = self.best_epoch
            self.epoch = epoch + 1
            self.history.append(record)
            _LOG.info("epoch %d/%d %s", epoch + 1, epochs, json.dumps(record))
            if self.out_dir is not None and self.is_main:
                # best.pt first: last.pt (and metrics.jsonl) never name a best epoch that
                # best.pt does not hold yet.
                if improved:
                    self.save_checkpoint(self.out_dir / "best.pt")
                self.save_checkpoint(self.out_dir / "last.pt")
                self._saved_epoch = epoch + 1
                self._rewrite_metrics()
                if self._ghost_best == epoch + 1 and not improved:
                    msg = (f"'{self.out_dir / 'best.pt'}' holds epoch {epoch + 1} of the "
                           f"interrupted run, which the resumed run did not reproduce as the "
                           f"best (it names epoch {self.best_epoch})")
                    _LOG.warning(msg)
                    warnings.warn(msg, stacklevel=3)

    def _rewrite_metrics(self) -> None:
        assert self.out_dir is not None
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        _atomic_write_text(text, self.out_dir / "metrics.jsonl")
