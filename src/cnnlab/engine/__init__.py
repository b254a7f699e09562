"""The training engine: optimizers, schedules, losses, precision, the train/evaluate loop and fit."""
