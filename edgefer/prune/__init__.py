"""Structured pruning (`edgefer prune`, needs the `[train]` extra): channel groups that must shrink
together, the criteria, the step loop with fine-tuning, and the report."""

from edgefer.prune.config import PruneConfig, PruneResult
from edgefer.prune.run import run_prune

__all__ = ["PruneConfig", "PruneResult", "run_prune"]
