"""What `edgefer/video.py`'s CheckedVideo costs and catches.

1. Cost: decoding on one thread (so that FFmpeg's errors belong to the frame being read) against OpenCV's
   default frame threads, grabbing every frame of a 720p H.264 video; medians of alternating runs.
2. Catch: a video whose first keyframe is scribbled over (a bad sector): OpenCV returns every frame; per frame,
   the mean absolute error against the clean video, and whether CheckedVideo reported FFmpeg errors for it.

Writes profiles/benchmarks/decode_errors.md. Needs PyAV (`[dev]`) to write the H.264 test videos.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from edgefer import records
from edgefer.compose import compose_frames
from edgefer.data import read_fer_csv
from edgefer.video import CheckedVideo

OUT = Path(__file__).with_suffix(".md")


def write_h264(images, path: Path, fps: int) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return path


def grab_ms(path: Path, threads: int | None) -> float:
    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, threads]
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    count, started = 0, time.perf_counter()
    while capture.grab():
        count += 1
    capture.release()
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest", limit=200)
    frames = [f.image for f in compose_frames(faces.images, faces.labels, 60, 2, seed=3)]
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        hd = write_h264([np.roll(cv2.resize(frames[0], (1280, 720)), 4 * k, axis=1) for k in range(150)],
                        Path(folder) / "hd.mp4", 30)
        times = {"FFmpeg's frame threads (OpenCV default)": [], "one thread (CheckedVideo)": []}
        for _ in range(args.repeats):
            for name, threads in zip(times, (None, 1)):
                times[name].append(grab_ms(hd, threads))
        base = statistics.median(times["FFmpeg's frame threads (OpenCV default)"])
        rows = [[name, round(statistics.median(v), 3), ", ".join(f"{x:.3f}" for x in v),
                 f"{statistics.median(v) / base:.2f}x"] for name, v in times.items()]
        lines += [f"## Cost: grabbing 150 frames of 1280x720 H.264, ms a frame, medians of {args.repeats}", "",
                  records.table(["decoding", "ms / frame (median)", "runs", "vs default"], rows), ""]

        clean = write_h264(frames, Path(folder) / "clean.mp4", 15)
        data = bytearray(clean.read_bytes())   # the moov atom is at the end: these bytes are the first frames'
        for at in range(2000, 30000, 97):
            data[at] ^= 0x5A
        damaged = Path(folder) / "damaged.mp4"
        damaged.write_bytes(bytes(data))
        video, rows, index = CheckedVideo(str(damaged)), [], 0
        while True:
            ok, image, errors = video.read()
            if not ok:
                break
            error = float(np.abs(image.astype(np.int16) - frames[index].astype(np.int16)).mean())
            if index < 20 or errors:
                rows.append([index, round(error, 1), "yes" if errors else "", (errors[0][:60] if errors else "")])
            index += 1
        video.release()
    lines += ["## Catch: a 60-frame 640x480 H.264 video with its first keyframe scribbled over "
              "(bytes 2,000-30,000, every 97th)", "",
              f"OpenCV returned {index} of 60 frames. Mean absolute error against the clean video (a clean "
              "re-encode is ~3), first 20 frames:", "",
              records.table(["frame", "mean abs. error", "FFmpeg errors", "first error"], rows), "",
              "Only the frames FFmpeg reports can be skipped; the concealed damage fades over the frames after "
              "them (no keyframe flag from OpenCV), which `run` and `bulk` say in their message."]
    text = records.header("Decoding errors: CheckedVideo's cost and catch") + "\n" + "\n".join(lines) + "\n"
    print(text)
    records.write(OUT, text)


if __name__ == "__main__":
    main()
