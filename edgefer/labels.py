"""The seven FER-2013 expression classes and the names folders may use for them."""

from __future__ import annotations

CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASS_NAMES)

_ALIASES = {
    "anger": 0, "angry": 0, "an": 0,
    "disgust": 1, "disgusted": 1, "di": 1,
    "fear": 2, "fearful": 2, "afraid": 2, "afs": 2, "fe": 2,
    "happy": 3, "happiness": 3, "joy": 3, "ha": 3,
    "sad": 4, "sadness": 4, "sa": 4,
    "surprise": 5, "surprised": 5, "su": 5,
    "neutral": 6, "ne": 6,
}


def class_index_for_folder(name: str) -> int | None:
    """Class index for a folder name such as 'happy', 'Happiness', '3' or KDEF's 'HA'; None if unknown."""
    key = name.strip().lower()
    if key.isdigit():
        index = int(key)
        return index if 0 <= index < NUM_CLASSES else None
    return _ALIASES.get(key)
