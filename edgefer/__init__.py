"""edgefer: facial expression recognition from training data to an edge device."""

from edgefer.labels import CLASS_NAMES, NUM_CLASSES

__version__ = "0.1.0"
__all__ = ["CLASS_NAMES", "NUM_CLASSES", "__version__"]
