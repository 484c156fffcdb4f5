"""`python -m edgefer ...`: the same as the `edgefer` command."""

from edgefer.cli import console

console()
