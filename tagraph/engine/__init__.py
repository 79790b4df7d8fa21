"""tagraph.engine: training loop, checkpoints."""

from tagraph.engine.trainer import (
    ConfigMismatchError,
    NonFiniteLossError,
    Trainer,
    load_checkpoint,
    move_to_device,
    seed_everything,
)

__all__ = [
    "Trainer",
    "load_checkpoint",
    "move_to_device",
    "seed_everything",
    "ConfigMismatchError",
    "NonFiniteLossError",
]
