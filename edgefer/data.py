"""Data sets: FER-2013 CSV (Kaggle layout) and image folders, decoded to uint8 48x48 grayscale.

Everything here is numpy/OpenCV only, so it imports on a device without TensorFlow.
The TensorFlow input pipeline (augmentation, batching) lives in `edgefer.train.pipeline`.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.labels import CLASS_NAMES, NUM_CLASSES, class_index_for_folder
from edgefer.media import IMAGE_SUFFIXES, load_image
from edgefer.scaling import scale_to_unit_range  # noqa: F401 - part of the data API

DATA_HELP = "FER-2013 CSV (Kaggle layout, plain or .gz) or an image folder with one sub-folder per class."

FER_SPLITS = ("Training", "PublicTest", "PrivateTest")
FER_SIZE = 48
_BLOCK_ROWS = 2048

csv.field_size_limit(sys.maxsize)


class DataError(EdgeferError):
    """Bad input data; the message is one line naming the file, row or path and what was expected."""


@dataclass
class FaceSet:
    """Faces as uint8 (N, S, S) grayscale with integer labels 0-6."""

    images: np.ndarray
    labels: np.ndarray
    source: str = ""
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices) -> "FaceSet":
        return FaceSet(self.images[indices], self.labels[indices], self.source)

    def head(self, n: int | None) -> "FaceSet":
        return self if n is None or n >= len(self) else self.take(np.arange(n))

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- FER-2013 CSV


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")   # -sig: a spreadsheet's byte-order mark is not a column


def _csv_records(handle):
    """(physical line number, fields) per CSV record. Lines without a quote are split on commas directly (exact
    for them, and 2x faster than the csv module over FER-2013's 8 KB rows, which matters when a split is read
    by scanning past the others); lines with quotes, and quoted fields that run over lines, go to `csv`."""
    line_no = 0
    for line in handle:
        line_no += 1
        first = line_no
        if '"' in line:
            while line.count('"') % 2:          # a quoted field continues on the next line
                more = next(handle, None)
                if more is None:
                    break
                line, line_no = line + more, line_no + 1
            yield first, next(csv.reader([line]), [])
        else:
            line = line.rstrip("\r\n")
            yield first, line.split(",") if line else []


def _diagnose_pixels(text: str, expected: int) -> str:
    """Explain why a pixel string is not `expected` integers in 0-255 (slow path, bad rows only)."""
    tokens = text.split()
    for token in tokens:
        try:
            value = int(token)
        except ValueError:
            return f"pixel {token!r} is not an integer (expected {expected} integers 0-255)"
        if not 0 <= value <= 255:
            return f"pixel value {value} is out of range 0-255"
    return f"{len(tokens)} pixels, expected {expected} (a {FER_SIZE}x{FER_SIZE} image)"


def _parse_pixels(text: str, expected: int) -> np.ndarray | None:
    """One row, slow but exact: uint8 pixels, or None when the row is malformed."""
    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError:
        return None
    if values.size != expected or values.min() < 0 or values.max() > 255:
        return None
    return values.astype(np.uint8)


def _parse_pixel_block(texts: list[str], expected: int) -> np.ndarray | None:
    """Many rows in one C pass; None if any row is not exactly `expected` integers in 0-255."""
    if any(text.count(" ") != expected - 1 for text in texts):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # older numpy warns on a bad token
            values = np.fromstring(" ".join(texts), dtype=np.int16, sep=" ")
    except ValueError:  # numpy 2.4+ raises on a token that is not a number
        return None
    if values.size != expected * len(texts) or values.min() < 0 or values.max() > 255:
        return None
    return values.astype(np.uint8).reshape(len(texts), expected)


def read_fer_csv(
    path: str | os.PathLike,
    splits: str | tuple[str, ...] | list[str] = ("Training",),
    skip_bad: bool = False,
    limit: int | None = None,
) -> FaceSet:
    """Read Kaggle's fer2013.csv (plain or .gz) and return the rows whose Usage is in `splits`.

    `limit` stops after that many accepted rows (for quick experiments and tests).
    Malformed rows raise DataError naming file, line and problem; `skip_bad` skips and counts them.
    """
    path = Path(path)
    wanted = (splits,) if isinstance(splits, str) else tuple(splits)
    for split in wanted:
        if split not in FER_SPLITS:
            raise DataError(f"{path}: unknown split {split!r}; expected one of {', '.join(FER_SPLITS)}")
    if not path.exists():
        raise DataError(f"{path}: file not found (expected a FER-2013 CSV, plain or .gz)")
    expected = FER_SIZE * FER_SIZE
    rows: list[tuple[int, int, str]] = []  # (line, label, pixel text) of the wanted splits
    skipped, seen_splits = 0, set()

    def reject(line_no: int, problem: str) -> None:
        nonlocal skipped
        if not skip_bad:
            raise DataError(f"{path}: line {line_no}: {problem}")
        skipped += 1

    with _open_text(path) as handle:
        records = _csv_records(handle)
        line_no = 1
        try:
            header = [name.strip() for name in next(records)[1]]
        except StopIteration:
            raise DataError(f"{path}: file is empty (expected header 'emotion,pixels,Usage')") from None
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            raise DataError(f"{path}: not a readable CSV ({error})") from None
        missing = [name for name in ("emotion", "pixels", "Usage") if name not in header]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; expected header 'emotion,pixels,Usage'"
            )
        col_label, col_pixels, col_usage = (header.index(n) for n in ("emotion", "pixels", "Usage"))
        width = len(header)
        try:
            for line_no, row in records:
                if not row:
                    continue
                if len(row) != width:
                    reject(line_no, f"{len(row)} fields, expected {width} ({','.join(header)})")
                    continue
                usage = row[col_usage].strip()
                seen_splits.add(usage)
                if usage not in wanted:
                    continue
                label_text = row[col_label].strip()
                if not label_text.isdigit() or int(label_text) >= NUM_CLASSES:
                    reject(line_no, f"label {label_text!r} is not an integer 0-{NUM_CLASSES - 1}")
                    continue
                rows.append((line_no, int(label_text), row[col_pixels].strip()))
                if limit is not None and len(rows) >= limit:
                    break
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            raise DataError(f"{path}: unreadable after line {line_no}: {error}") from None

    images, labels = [], []
    for start in range(0, len(rows), _BLOCK_ROWS):
        block = rows[start : start + _BLOCK_ROWS]
        pixels = _parse_pixel_block([text for _, _, text in block], expected)
        if pixels is not None:
            images.append(pixels)
            labels.extend(label for _, label, _ in block)
            continue
        for line_no, label, text in block:  # a bad row is in this block: find it
            row_pixels = _parse_pixels(text, expected)
            if row_pixels is None:
                reject(line_no, _diagnose_pixels(text, expected))
                continue
            images.append(row_pixels[None])
            labels.append(label)
    if not labels:
        present = ", ".join(sorted(seen_splits)) or "none"
        raise DataError(f"{path}: split {'+'.join(wanted)} is empty (splits present: {present})")
    faces = FaceSet(
        np.concatenate(images).reshape(-1, FER_SIZE, FER_SIZE),
        np.asarray(labels, dtype=np.int64),
        source=f"{path}:{'+'.join(wanted)}",
        skipped=skipped,
    )
    if skipped:
        faces.notes.append(f"{path}: skipped {skipped} bad row(s)")
    return faces


# --------------------------------------------------------------------------- image folders


def read_face_image(path: str | os.PathLike, size: int = FER_SIZE) -> np.ndarray:
    """Any image OpenCV reads -> uint8 (size, size) grayscale."""
    import cv2

    image, why = load_image(path, grey=True)
    if image is None:
        raise DataError(f"{path}: {why}")
    if image.shape != (size, size):
        shrinking = image.shape[0] > size or image.shape[1] > size
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return image


def read_image_folder(
    root: str | os.PathLike, size: int = FER_SIZE, skip_bad: bool = False
) -> FaceSet:
    """One sub-folder per class (named after the class, e.g. 'happy', or its index '3')."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected one sub-folder per class)")
    images, labels, skipped, ignored = [], [], 0, {}
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise DataError(f"{root}: no class sub-folders (expected e.g. {root}/happy/*.jpg)")
    for folder in class_dirs:
        label = class_index_for_folder(folder.name)
        if label is None:
            raise DataError(
                f"{folder}: folder name is not a class; expected one of {', '.join(CLASS_NAMES)} or 0-6"
            )
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):   # nested folders count for the class
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                ignored[file.suffix.lower() or "(no suffix)"] = ignored.get(file.suffix.lower() or "(no suffix)", 0) + 1
                continue
            try:
                images.append(read_face_image(file, size))
            except DataError:
                if not skip_bad:
                    raise
                skipped += 1
                continue
            labels.append(label)
    if not labels:
        raise DataError(f"{root}: no images found in its class folders")
    faces = FaceSet(np.stack(images), np.asarray(labels, np.int64), source=str(root), skipped=skipped)
    if skipped:
        faces.notes.append(f"{root}: skipped {skipped} unreadable image(s)")
    if ignored:
        kinds = ", ".join(f"{count} {suffix}" for suffix, count in sorted(ignored.items()))
        faces.notes.append(f"{root}: ignored {sum(ignored.values())} file(s) that are not images edgefer reads "
                           f"({kinds}; expected {', '.join(sorted(IMAGE_SUFFIXES))})")
    return faces


def stratified_split(
    faces: FaceSet, fractions: tuple[float, ...], seed: int = 0
) -> list[FaceSet]:
    """Split into len(fractions) parts with the class balance of the whole (fractions sum to 1)."""
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise DataError(f"split fractions {fractions} must be non-negative and sum to 1")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions)
    for label in np.unique(faces.labels):
        members = rng.permutation(np.flatnonzero(faces.labels == label))
        cuts = np.round(bounds * len(members)).astype(int)
        start = 0
        for part, stop in zip(parts, cuts):
            part.extend(members[start:stop])
            start = stop
    return [faces.take(np.sort(np.asarray(p, dtype=np.int64))) for p in parts]


# --------------------------------------------------------------------------- one entry point


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from and how it splits into train / validation / test."""

    path: str
    train_split: str = "Training"
    val_split: str = "PublicTest"
    test_split: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None
    skip_bad: bool = False
    size: int = FER_SIZE


def is_csv(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def load_split(spec: DataSpec, split: str) -> FaceSet:
    """One named split: a CSV 'Usage' value, or 'train'/'val'/'test' of a stratified folder split."""
    if is_csv(spec.path):
        stat = os.stat(spec.path) if os.path.exists(spec.path) else None
        return _csv_split(spec.path, stat and (stat.st_size, stat.st_mtime_ns), split, spec.skip_bad, spec.limit,
                          spec.size)
    if split.lower() == "all":   # every labelled image of the folder (a folder made for evaluation)
        return _folder_all(spec).head(spec.limit)
    parts = dict(zip(("train", "val", "test"), _folder_parts(spec)))
    key = {"training": "train", "publictest": "val", "privatetest": "test"}.get(split.lower(), split.lower())
    if key not in parts:
        raise DataError(f"{spec.path}: unknown split {split!r} for an image folder; expected all, train, val or test")
    return parts[key].head(spec.limit)


@functools.lru_cache(maxsize=4)
def _csv_split(path, version, split: str, skip_bad: bool, limit: int | None, size: int) -> FaceSet:
    """One CSV split, kept for the next run in this process with the same file (same size and modification
    time) and options: a sweep's trials, or train then export, read FER-2013's 266 MB once. The arrays are
    read-only, so no caller can change what the next one gets."""
    faces = read_fer_csv(path, split, skip_bad=skip_bad, limit=limit)
    if size != FER_SIZE:
        faces.images = resize_faces(faces.images, size)
    faces.images.flags.writeable = False
    faces.labels.flags.writeable = False
    return faces


@functools.lru_cache(maxsize=2)
def _folder_all(spec: DataSpec) -> FaceSet:
    return read_image_folder(spec.path, spec.size, skip_bad=spec.skip_bad)


@functools.lru_cache(maxsize=2)
def _folder_parts(spec: DataSpec) -> list[FaceSet]:
    faces = _folder_all(spec)
    train_fraction = 1.0 - spec.val_fraction - spec.test_fraction
    return stratified_split(faces, (train_fraction, spec.val_fraction, spec.test_fraction), spec.seed)


def resize_faces(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in images])
