#!/usr/bin/env bash
# Lite install of edgefer on a device and a systemd service that starts `edgefer run` on boot.
# Usage: devices/install.sh BOARD PROFILE   (BOARD: a folder of devices/, e.g. raspberry-pi or jetson)
set -euo pipefail
board=${1:?board folder, e.g. raspberry-pi}
profile=${2:?device profile, e.g. rpi4}
repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/edgefer
sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv v4l-utils
sudo mkdir -p "$prefix" /var/lib/edgefer
sudo chown "$USER" "$prefix" /var/lib/edgefer
python3 -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install -q --upgrade pip
"$prefix/venv/bin/pip" install -q -r "$repo/devices/$board/requirements-lite.txt"
"$prefix/venv/bin/pip" install -q --no-deps "$repo"      # the base install: no TensorFlow
"$prefix/venv/bin/edgefer" run --source demo --device "$profile" --max-frames 1 --no-show   # smoke test
sed -e "s|@PREFIX@|$prefix|g" -e "s|@PROFILE@|$profile|g" -e "s|@USER@|$USER|g" -e "s|@REPO@|$repo|g" \
    "$repo/devices/$board/edgefer.service" | sudo tee /etc/systemd/system/edgefer.service >/dev/null
if ! sudo test -f /etc/edgefer/env; then   # the browser view's token, for the unit's EnvironmentFile (not `ps`)
    sudo install -d -m 755 /etc/edgefer
    printf 'EDGEFER_SERVE_TOKEN=%s\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" \
        | sudo tee /etc/edgefer/env >/dev/null
    sudo chmod 600 /etc/edgefer/env
fi
sudo usermod -aG video "$USER"
sudo systemctl daemon-reload
sudo systemctl enable --now edgefer.service
echo "edgefer is running: journalctl -u edgefer -f ; results in /var/lib/edgefer/expressions.jsonl"
