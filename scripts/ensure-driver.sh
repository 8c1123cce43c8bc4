#!/usr/bin/env bash
# Make sure a wgpu adapter exists: when no Vulkan driver is installed, install Mesa's
# software Vulkan driver (lavapipe). Needs apt-get and root (or sudo) on Debian/Ubuntu.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  exit 0
fi
echo "no Vulkan driver found: installing mesa-vulkan-drivers (lavapipe)" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
