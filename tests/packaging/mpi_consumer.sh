#!/bin/sh
# Packaging test (issue 14): libpypool-mpi from a DESTDIR install of this build, through
# `pkg-config --cflags --libs pypool-mpi` and through CMake's find_package(pypool) with the
# pypool::mpi target; each program runs under mpirun -n 2.
. "$(dirname "$0")/common.sh"
install_build
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
check_run() {
    out=$(mpirun --oversubscribe -n 2 "$1")
    echo "$out"
    echo "$out" | grep -q '^pypool-mpi: square 7=49, workers 1$' || { echo "unexpected output"; exit 1; }
}
pcdir="$stage_libdir/pkgconfig"
test -f "$pcdir/pypool-mpi.pc" || { echo "no pypool-mpi.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
flags=$(pkg-config --cflags --libs pypool-mpi)
echo "pkg-config: $flags"
# shellcheck disable=SC2086  # flags are words
"$cxx" -std=c++20 $sanflags "$src/tests/packaging/mpi_consumer.cpp" -o "$tmp/pc_consumer" $flags \
    -Wl,-rpath,"$stage_libdir"
check_run "$tmp/pc_consumer"
if command -v cmake >/dev/null; then
    cp -R "$src/tests/packaging/mpi_consumer" "$tmp/cm"
    cp "$src/tests/packaging/mpi_consumer.cpp" "$tmp/cm/"
    cmake -S "$tmp/cm" -B "$tmp/cmbuild" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$stage" \
        -DCMAKE_CXX_FLAGS="$sanflags" -DCMAKE_EXE_LINKER_FLAGS="$sanflags" \
        -DCMAKE_BUILD_RPATH="$stage_libdir" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
    grep "found pypool::mpi" "$tmp/cmake.log"
    cmake --build "$tmp/cmbuild" -j 2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
    check_run "$tmp/cmbuild/mpi_consumer"
fi
