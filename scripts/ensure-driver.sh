#!/usr/bin/env bash
# Make sure a wgpu adapter exists: when no Vulkan driver is installed, install Mesa's
# software Vulkan driver (lavapipe). Needs apt-get and root (or sudo) on Debian/Ubuntu.
set -euo pipefail
for icd in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
  [ -e "$icd" ] && exit 0
done
echo "no Vulkan driver found: installing mesa-vulkan-drivers (lavapipe)" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
