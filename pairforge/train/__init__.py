"""Training on published versions: per-kind datasets, losses, EWC, students, and ``run_train``."""

from pairforge.config_train import TrainConfig
from pairforge.train.run import TrainSummary, run_train, train_student

__all__ = ["TrainConfig", "TrainSummary", "run_train", "train_student"]
