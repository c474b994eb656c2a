"""Training engine: the loop, optimizer steps, averaged models, checkpoints, evaluation and logging."""
