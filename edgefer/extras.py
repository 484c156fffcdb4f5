"""Optional parts of edgefer and the pip extra that brings each. A leaf.

The base install is what a device needs (LiteRT, OpenCV, numpy); training and export need `[train]`
(TensorFlow, Keras, tf2onnx, ONNX, mtcnn, matplotlib, Optuna). A command that reaches for a missing
part stops with one line that says which extra to install.
"""

from __future__ import annotations

import importlib


class MissingExtra(ImportError):
    """A part of edgefer whose packages are not installed; the message is the one line to print."""


def require(module: str, extra: str = "train", what: str = "this command"):
    """Import `module` or raise MissingExtra naming the pip extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = getattr(error, "name", None) or module
        raise MissingExtra(f"{what} needs the {extra} extra (no module named {missing!r}): "
                           f"pip install 'edgefer[{extra}]'") from None


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
