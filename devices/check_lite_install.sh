#!/usr/bin/env bash
# Proves the lite install: a fresh virtual environment with only edgefer's base dependencies
# (no TensorFlow, no mtcnn) runs `edgefer run` on a composed clip and writes correct JSON Lines.
# Usage: devices/check_lite_install.sh [FER_CSV]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$repo/../shared/data/fer2013_train_publictest.csv.gz}
work=$(mktemp -d)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$repo"            # the base install only
if "$work/venv/bin/python" -c "import tensorflow" 2>/dev/null; then echo "FAIL: TensorFlow got installed"; exit 1; fi
cd "$work"
"$work/venv/bin/python" - "$data" <<'PY'
import sys
from edgefer.compose import compose_frames, write_video
from edgefer.data import read_fer_csv
faces = read_fer_csv(sys.argv[1], "PublicTest", limit=40)
write_video(compose_frames(faces.images, faces.labels, 20, 2, seed=5), "clip.avi")
PY
"$work/venv/bin/edgefer" run --source clip.avi --json frames.jsonl --no-show
"$work/venv/bin/python" - <<'PY'
import json
records = [json.loads(line) for line in open("frames.jsonl")]
assert [r["frame"] for r in records] == list(range(20)), "one JSON line per frame"
faces = sum(len(r["faces"]) for r in records)
assert faces >= 30, f"only {faces} of 40 faces found"
for r in records:
    for f in r["faces"]:
        assert len(f["box"]) == 4 and abs(sum(f["probabilities"].values()) - 1) < 0.05
print(f"lite install OK: {len(records)} frames, {faces} faces, no TensorFlow in the environment")
PY
"$work/venv/bin/pip" list 2>/dev/null | grep -i -E "tensorflow|keras|mtcnn|litert|onnx" || true
rm -rf "$work"
