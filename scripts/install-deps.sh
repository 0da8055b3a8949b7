#!/usr/bin/env bash
# Installs the system packages safeshard builds against (liblz4 through pkg-config), if missing.
# Debian/Ubuntu; run as root or with sudo available.
set -euo pipefail
need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists liblz4 2>/dev/null || need+=(liblz4-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
