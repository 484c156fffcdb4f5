#!/usr/bin/env bash
# Lite install of edgefer on this board and a systemd service that starts `edgefer run` on boot.
# Usage (from the repository root, as a user with sudo):  devices/jetson/setup.sh [PROFILE]   (default: jetson)
exec "$(dirname "$0")/../install.sh" jetson "${1:-jetson}"
