"""edgefer: facial expression recognition from training data to an edge device.

    import edgefer
    result = edgefer.Analyzer().analyze("photo.jpg")
"""

from edgefer.labels import CLASS_NAMES, NUM_CLASSES
from edgefer.media import DEMO_IMAGE

__version__ = "0.1.0"
__all__ = ["CLASS_NAMES", "DEMO_IMAGE", "NUM_CLASSES", "Analyzer", "Face", "Result", "__version__"]


def __getattr__(name: str):
    """The API is imported on first use: `import edgefer` stays light (the CLI imports it for its version)."""
    if name in ("Analyzer", "Face", "Result"):
        from edgefer import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgefer' has no attribute {name!r}")
