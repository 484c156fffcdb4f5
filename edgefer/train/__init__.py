"""Training (`edgefer train`, needs the `[train]` extra): configuration and recipes as plain data, the
input pipeline, the loop with checkpoints and resume, and the optional techniques (weight averaging,
sharpness-aware minimisation, distillation, structural re-parameterization), one file each.

Importing this package is light; Keras is imported when a run starts.
"""

from edgefer.train.config import RECIPES, TrainConfig, config_from_recipe
from edgefer.train.history import read_history
from edgefer.train.loop import resume, train, training_phases
from edgefer.train.results import LoopState, TrainResult

__all__ = ["RECIPES", "LoopState", "TrainConfig", "TrainResult", "config_from_recipe", "read_history", "resume",
           "train", "training_phases"]
