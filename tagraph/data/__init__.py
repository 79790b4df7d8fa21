"""tagraph.data."""
