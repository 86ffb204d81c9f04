# Shared by scripts/demo, scripts/test and scripts/bench: install what is missing, configure.
# shellcheck shell=bash

PYPOOL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The Debian 12 packages a build needs. cmake: Meson finds Debian's range-v3 only through
# its CMake package. dpkg-dev: Meson asks dpkg-architecture for Debian's multiarch libdir
# (lib/x86_64-linux-gnu); without it Meson picks lib64, where Debian's CMake never looks for
# an installed pypoolConfig.cmake. python3 comes with meson and counts the test cases.
PYPOOL_PACKAGES=(meson ninja-build g++ cmake pkg-config libboost-dev libboost-test-dev
                 librange-v3-dev dpkg-dev libcereal-dev
                 openmpi-bin libopenmpi-dev)  # MPI (issue 14): libpypool-mpi, mpirun for its tests

# installed PACKAGE: true if Debian package PACKAGE is installed.
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_packages [extra packages...]: apt-get install whatever is missing, non-interactively.
ensure_packages() {
    local missing=() p
    for p in "${PYPOOL_PACKAGES[@]}" "$@"; do
        installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; return 1; }
        sudo=(sudo)
    fi
    echo "Installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure BUILD_DIR [meson options...]: meson setup once (offline: never download wraps).
configure() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" --wrap-mode=nodownload "$@"
    fi
}
