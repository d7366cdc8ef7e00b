#!/usr/bin/env bash
# Set-up: installs the Debian packages GPTQ Workbench needs (when run as root, or with sudo)
# and builds everything into build/. Safe to run again.
#   scripts/setup.sh            install packages + configure + build
#   SKIP_APT=1 scripts/setup.sh only configure + build
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  qt6-base-dev qt6-base-dev-tools qt6-charts-dev qt6-svg-dev libqt6opengl6-dev libgl-dev
  libeigen3-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev
  xvfb xauth
)

[ "${SKIP_APT:-0}" = 1 ] || scripts/apt_install.sh "${PACKAGES[@]}"

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${GPTQW_CMAKE_ARGS:-}
cmake --build build
