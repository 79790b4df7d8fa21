"""tagraph.engine: training loop, checkpoints."""

from tagraph.engine.trainer import (
    ConfigMismatchError,
    NonFiniteLossError,
    Trainer,
    config_diff,
    load_checkpoint,
    move_to_device,
    seed_everything,
)

__all__ = [
    "Trainer",
    "load_checkpoint",
    "config_diff",
    "move_to_device",
    "seed_everything",
    "ConfigMismatchError",
    "NonFiniteLossError",
]
