"""tagraph.loader."""
