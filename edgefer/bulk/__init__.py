"""Bulk processing (`edgefer bulk`, needs the `[bulk]` extra: Ray Data): expressions for archives of images
and videos, from one laptop to a cluster; Parquet out, resumable."""

from edgefer.bulk.config import BulkConfig
from edgefer.bulk.engine import run_bulk

__all__ = ["BulkConfig", "run_bulk"]
