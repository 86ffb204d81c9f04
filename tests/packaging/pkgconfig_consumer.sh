#!/bin/sh
# Packaging test: a plain compile and link through `pkg-config --cflags --libs pypool`
# against a DESTDIR install of this build (PKG_CONFIG_SYSROOT_DIR maps its paths), run
# once with an rpath to pkg-config's libdir and once through LD_LIBRARY_PATH (README).
. "$(dirname "$0")/common.sh"
install_build
pcdir="$stage_libdir/pkgconfig"
test -f "$pcdir/pypool.pc" || { echo "no pypool.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
flags=$(pkg-config --cflags --libs pypool)
pcversion=$(pkg-config --modversion pypool)
echo "pkg-config: $flags (version $pcversion)"
libdir=$(pkg-config --variable=libdir pypool)
# As README says: with an rpath from pkg-config's libdir, the program runs as it is ...
# shellcheck disable=SC2086  # flags are words
"$cxx" -std=c++20 $sanflags "-DPYPOOL_EXPECTED_VERSION=\"$pcversion\"" \
    "$src/tests/packaging/consumer.cpp" -o "$tmp/consumer" $flags -Wl,-rpath,"$libdir"
run_consumer "$tmp/consumer"
# ... and without one, through LD_LIBRARY_PATH. (Where the loader has no other copy, the
# plain run fails as README describes: "libpypool.so.0: cannot open shared object file".)
# shellcheck disable=SC2086
"$cxx" -std=c++20 $sanflags "-DPYPOOL_EXPECTED_VERSION=\"$pcversion\"" \
    "$src/tests/packaging/consumer.cpp" -o "$tmp/consumer_plain" $flags
if ldd "$tmp/consumer_plain" | grep -q "libpypool.so.0 => not found"; then
    if "$tmp/consumer_plain" >"$tmp/plain.log" 2>&1; then
        echo "a consumer without rpath ran although ldd finds no libpypool"; exit 1
    fi
    grep "cannot open shared object file" "$tmp/plain.log"
fi
(
    LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    run_consumer "$tmp/consumer_plain"
)
