"""Profiling (`edgefer profile`): sampled child processes per stage, the paper's tables, edge numbers."""

from edgefer.profile.run import ProfileConfig, gpu_present, run_profile

__all__ = ["ProfileConfig", "gpu_present", "run_profile"]
