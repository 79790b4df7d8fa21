"""tagraph.models."""
