"""tagraph.engine."""
