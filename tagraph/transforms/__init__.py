"""tagraph.transforms."""
