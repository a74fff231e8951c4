"""Training: sampler, processing, losses, actor, trainer, and the builder of the project's own training data."""
