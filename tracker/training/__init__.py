"""Training pipeline: pair sampling, losses and the trainer (kept apart from the tracker)."""
