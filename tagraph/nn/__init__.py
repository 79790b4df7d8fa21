"""tagraph.nn."""
