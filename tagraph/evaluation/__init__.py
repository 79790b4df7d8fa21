"""tagraph.evaluation."""
