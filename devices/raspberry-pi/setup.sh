#!/usr/bin/env bash
# Lite install of edgefer on this board and a systemd service that starts `edgefer run` on boot.
# Usage (from the repository root, as a user with sudo):  devices/raspberry-pi/setup.sh [PROFILE]   (default: rpi4)
exec "$(dirname "$0")/../install.sh" raspberry-pi "${1:-rpi4}"
