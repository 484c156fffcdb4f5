"""File kinds edgefer reads: which suffixes are still images (everything else OpenCV opens as video). A leaf."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

# the demo photo: NASA's public-domain portrait of Eileen Collins, as shipped by scikit-image
DEMO_IMAGE = Path(__file__).resolve().parent / "assets" / "astronaut.jpg"


def truncated_jpeg(path) -> bool:
    """A JPEG cut short (a copy or a power cut mid-write): no end-of-image marker at its end. OpenCV decodes such
    a file half grey with a libjpeg warning that names no file; edgefer names it and calls it unreadable."""
    if Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        return False
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64))
            tail = handle.read().rstrip(b"\x00 \r\n\t")
    except OSError:
        return False
    return size > 2 and not tail.endswith(b"\xff\xd9")


def load_image(path, grey: bool = False):
    """(image, "") for a picture OpenCV decodes whole, else (None, why): a truncated JPEG or an undecodable
    file. Colour images are BGR uint8, grey ones uint8 (H, W). The one reader of run, bulk, datasets and the API."""
    import cv2

    if truncated_jpeg(path):
        return None, "truncated JPEG (no end-of-image marker; expected a whole file)"
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None, "unreadable image (expected a file OpenCV can decode)"
    return image, ""
