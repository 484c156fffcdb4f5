#!/usr/bin/env bash
# Proves edgefer's base (device) install on arm64 by emulation: Debian bookworm arm64 (Raspberry Pi OS's
# base, Python 3.11) under qemu-user, the base install from PyPI's aarch64 wheels, then the demo photo, a
# folder of photos and every --device profile, emulating a Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76).
# Outputs are compared with the same commands on this (x86_64) machine, and the systemd units are checked
# with systemd-analyze. A recorded check, not part of CI: it needs root and takes 10-20 minutes.
#
# Usage (root, from the repository root):  devices/check_arm64.sh [WORKDIR]
# Writes profiles/arm64/check.md (the table) and profiles/arm64/check.log (everything it ran).
#
# Traps handled (measured here): qemu passes the host's x86 /proc/cpuinfo through and LiteRT segfaults in
# allocate_tensors (an ARM cpuinfo is bind-mounted over it); without /sys mounted XNNPACK is silently off;
# qemu's default CPU has SME, with which the int8 model answered fear 0.48 instead of happy 0.97 (QEMU_CPU
# pins the board's core).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/edgefer-arm64}
root=$work/rootfs
out=$repo/profiles/arm64
mkdir -p "$work" "$out"
log=$out/check.log
: > "$log"
say() { echo "$*" | tee -a "$log"; }
run() { echo "+ $*" >> "$log"; "$@" >> "$log" 2>&1; }

say "# edgefer arm64 check, $(date -u +%Y-%m-%dT%H:%MZ), host $(uname -m), repo $(git -C "$repo" rev-parse --short HEAD)"
export DEBIAN_FRONTEND=noninteractive
run apt-get install -y -qq qemu-user-static binfmt-support debootstrap systemd
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >> "$log" 2>&1 || true

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
if [ ! -x "$root/usr/bin/python3" ]; then
  say "debootstrap bookworm arm64 from this machine's Debian mirror"
  run debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,libgl1,libglib2.0-0 \
      bookworm "$root" "$mirror"
fi

# what the chroot needs from the host: the CA bundle pip trusts here, an ARM cpuinfo, /proc, /sys, /dev
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca.crt"
cat > "$work/cpuinfo" <<'EOF'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

processor	: 1
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3
EOF
mounted=()
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; mounted=("$2" "${mounted[@]}"); }
cleanup() { for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounted=("$root/proc" "${mounted[@]}"); }
mountpoint -q "$root/sys" || { mount -t sysfs sys "$root/sys"; mounted=("$root/sys" "${mounted[@]}"); }
mountpoint -q "$root/dev" || bind /dev "$root/dev"
mount --bind "$work/cpuinfo" "$root/proc/cpuinfo"; mounted=("$root/proc/cpuinfo" "${mounted[@]}")
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# the repository (no .git, no records) and the test inputs
rm -rf "$root/src" && mkdir -p "$root/src" "$root/inputs/photos/nested"
tar -C "$repo" --exclude=.git --exclude=profiles --exclude=runs --exclude='*.egg-info' --exclude=build -cf - . | tar -C "$root/src" -xf -
python3 - "$root/inputs" "$repo" <<'PY'
import sys
from pathlib import Path
import cv2, numpy as np
sys.path.insert(0, sys.argv[2])
from edgefer.compose import compose_frames
from edgefer.data import read_fer_csv
inputs = Path(sys.argv[1])
faces = read_fer_csv(Path(sys.argv[2]).parent / "shared/data/fer2013_train_publictest.csv.gz", "PublicTest", limit=60)
frames = compose_frames(faces.images, faces.labels, count=4, faces_per_frame=2, seed=21)
for k, frame in enumerate(frames):
    cv2.imwrite(str(inputs / "photos" / ("nested/" if k == 3 else "") / f"frame{k}.png"), frame.image)
PY

# QEMU_CPU inside `env -i`: every exec starts a new qemu, which reads the variable from that environment
in_root() { QEMU_CPU=$1 chroot "$root" /usr/bin/env -i QEMU_CPU=$1 PATH=/opt/venv/bin:/usr/bin:/bin HOME=/root \
              PIP_CERT=/etc/ssl/certs/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 bash -c "$2"; }
if [ ! -x "$root/opt/venv/bin/edgefer" ]; then
  say "base install inside the emulated board (aarch64 wheels from PyPI)"
  run in_root cortex-a72 "python3 -m venv /opt/venv && pip install -q numpy 'opencv-python-headless>=4.8,<5' 'ai-edge-litert>=1.2' psutil typer"
fi
run in_root cortex-a72 "pip install -q --no-deps --force-reinstall /src"
# the Jetson profile runs the .onnx model: ONNX Runtime (the `onnx` extra) has aarch64 wheels too
in_root cortex-a72 "python3 -c 'import onnxruntime'" >> "$log" 2>&1 || run in_root cortex-a72 "pip install -q onnxruntime"
versions=$(in_root cortex-a72 "python3 -c 'import sys, numpy, cv2, ai_edge_litert, platform; print(platform.machine(), sys.version.split()[0], \"numpy\", numpy.__version__, \"opencv\", cv2.__version__)'; pip show ai-edge-litert | grep Version" | tr '\n' ' ')
say "arm64 environment: $versions"
say "TensorFlow importable inside: $(in_root cortex-a72 "python3 -c 'import tensorflow' 2>/dev/null && echo yes || echo no")"

# the same commands on x86 (this machine) and on each emulated board; JSON compared without timings
x86=$work/x86 && rm -rf "$x86" && mkdir -p "$x86"
commands=("demo|run --source demo --no-show -q"
          "photos|run --source /inputs/photos --no-show -q"
          "rpi4|run --source demo --device rpi4 --no-show -q"
          "rpi5|run --source demo --device rpi5 --no-show -q"
          "jetson|run --source demo --device jetson --no-show -q")
for entry in "${commands[@]}"; do
  name=${entry%%|*}; args=${entry#*|}
  (cd "$x86" && python3 -m edgefer ${args//\/inputs/$root/inputs} --json "$x86/$name.jsonl" >> "$log" 2>&1)
done
summary() {  # faces as "file-or-frame emotion prob box" lines, the comparable part of a JSON Lines file
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    for f in r["faces"]:
        print(r.get("file", r["frame"]), f["emotion"], round(f["probabilities"][f["emotion"]], 2), f["box"])
PY
}
say ""
say "| board (QEMU_CPU) | command | exit | faces | same faces and expressions as x86 | max prob diff |"
say "| --- | --- | ---: | ---: | --- | ---: |"
status=0
for board in "Pi 4 (cortex-a72)|cortex-a72" "Pi 5 (cortex-a76)|cortex-a76"; do
  label=${board%%|*}; cpu=${board#*|}
  for entry in "${commands[@]}"; do
    name=${entry%%|*}; args=${entry#*|}
    rm -f "$root/tmp/$name.jsonl"
    set +e; in_root "$cpu" "cd /tmp && edgefer $args --json /tmp/$name.jsonl" >> "$log" 2>&1; code=$?; set -e
    verdict=$(python3 - "$x86/$name.jsonl" "$root/tmp/$name.jsonl" <<'PY'
import json, sys
def read(path):
    try:
        return [json.loads(l) for l in open(path)]
    except OSError:
        return []
a, b = read(sys.argv[1]), read(sys.argv[2])
fa = [(r.get("file", r["frame"]), f["emotion"], f["box"]) for r in a for f in r["faces"]]
fb = [(r.get("file", r["frame"]), f["emotion"], f["box"]) for r in b for f in r["faces"]]
boxes_close = len(fa) == len(fb) and all(x[0] == y[0] and x[1] == y[1] and max(abs(p - q) for p, q in zip(x[2], y[2])) <= 2
                                         for x, y in zip(fa, fb))
diff = max((abs(p - q) for ra, rb in zip(a, b) for f, g in zip(ra["faces"], rb["faces"])
            for p, q in zip(f["probabilities"].values(), g["probabilities"].values())), default=float("nan"))
print(len(fb), "yes" if boxes_close and fb else "NO", f"{diff:.4f}")
PY
)
    set -- $verdict
    [ "$code" = 0 ] && [ "$2" = yes ] || status=1
    say "| $label | \`edgefer $args\` | $code | $1 | $2 | $3 |"
  done
done

say ""
say "systemd-analyze verify of the generated units:"
for board in raspberry-pi jetson; do
  unit=$work/edgefer-$board.service
  # the unit as install.sh writes it, pointing at the emulated board's venv
  sed -e "s|@PREFIX@|$root/opt|g" -e "s|@PROFILE@|rpi4|g" -e "s|@USER@|root|g" -e "s|@REPO@|/|g" \
      "$repo/devices/$board/edgefer.service" > "$unit"
  if systemd-analyze verify "$unit" >> "$log" 2>&1; then say "- devices/$board/edgefer.service: ok"; else say "- devices/$board/edgefer.service: FAILED (see check.log)"; status=1; fi
done

say ""
say "Python versions with aarch64 wheels for every base dependency (pip download --only-binary, manylinux aarch64):"
for py in 3.10 3.11 3.12 3.13; do
  tmp=$(mktemp -d)
  if pip download -q --only-binary=:all: --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
       --platform manylinux_2_28_aarch64 --python-version "$py" -d "$tmp" numpy 'opencv-python-headless>=4.8,<5' \
       'ai-edge-litert>=1.2' psutil typer >> "$log" 2>&1; then
    say "- Python $py: yes ($(ls "$tmp" | grep -o '^ai_edge_litert-[0-9.]*' | head -1))"
  else
    say "- Python $py: no (see check.log)"
  fi
  rm -rf "$tmp"
done
grep -v '^+ ' "$log" | grep -E '^(#|\||- |arm64|TensorFlow|systemd|Python|$)' > "$out/check.md" || true
exit $status
