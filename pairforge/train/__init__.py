"""Training on published versions: per-kind datasets, losses, EWC, students, and ``run_train``."""

from pairforge.train.run import TrainSummary, run_train, train_student
from pairforge.train.settings import TrainConfig

__all__ = ["TrainConfig", "TrainSummary", "run_train", "train_student"]
