"""File kinds edgefer reads: which suffixes are still images (everything else OpenCV opens as video). A leaf."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

# the demo photo: NASA's public-domain portrait of Eileen Collins, as shipped by scikit-image
DEMO_IMAGE = Path(__file__).resolve().parent / "assets" / "astronaut.jpg"
