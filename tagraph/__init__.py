"""tagraph: graph-based temporal action localization on PyTorch Geometric."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
