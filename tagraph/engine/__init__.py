"""tagraph.engine: training loop, checkpoints."""

from tagraph.engine.trainer import (
    CheckpointError,
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
    "CheckpointError",
    "ConfigMismatchError",
    "NonFiniteLossError",
]
