#!/bin/sh
# Packaging test: a plain compile and link through `pkg-config --cflags --libs pypool`
# against a DESTDIR install of this build (PKG_CONFIG_SYSROOT_DIR maps its paths).
. "$(dirname "$0")/common.sh"
install_build
pcdir="$stage_libdir/pkgconfig"
test -f "$pcdir/pypool.pc" || { echo "no pypool.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
flags=$(pkg-config --cflags --libs pypool)
pcversion=$(pkg-config --modversion pypool)
echo "pkg-config: $flags (version $pcversion)"
# shellcheck disable=SC2086  # flags are words
"$cxx" -std=c++20 $sanflags "-DPYPOOL_EXPECTED_VERSION=\"$pcversion\"" \
    "$src/tests/packaging/consumer.cpp" -o "$tmp/consumer" $flags -Wl,-rpath,"$stage_libdir"
run_consumer "$tmp/consumer"
