#!/usr/bin/env bash
# Make sure a wgpu adapter exists. macOS (Metal) and Windows (DX12) have one; on Linux,
# when no Vulkan driver is installed, install Mesa's software Vulkan driver (lavapipe)
# with the system's package manager (apt-get, dnf, pacman, zypper or apk; root or sudo).
# Elsewhere it says what to install and fails. Without any adapter shadeprop still runs
# on its CPU backends (`--backend cpu`); only the GPU tests need one.
set -euo pipefail
case "$(uname -s)" in
  Darwin|MINGW*|MSYS*|CYGWIN*) exit 0 ;;
esac
for icd in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
  [ -e "$icd" ] && exit 0
done
echo "no Vulkan driver found: installing Mesa's software Vulkan driver (lavapipe)" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if command -v apt-get >/dev/null; then
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
elif command -v dnf >/dev/null; then
  $sudo dnf install -y -q mesa-vulkan-drivers
elif command -v pacman >/dev/null; then
  $sudo pacman -S --noconfirm --needed vulkan-swrast
elif command -v zypper >/dev/null; then
  $sudo zypper --non-interactive install libvulkan_lvp
elif command -v apk >/dev/null; then
  $sudo apk add --no-cache mesa-vulkan-swrast
else
  echo "no known package manager: install a Vulkan driver for your GPU, or Mesa's lavapipe" >&2
  echo "(the package providing /usr/share/vulkan/icd.d/lvp_icd*.json), then run this again" >&2
  exit 1
fi
