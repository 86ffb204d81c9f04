#!/bin/sh
# Packaging test: a CMake project using find_package(pypool <this version>) and
# pypool::pypool against a DESTDIR install of this build (CMAKE_PREFIX_PATH into it).
. "$(dirname "$0")/common.sh"
install_build
test -f "$stage_libdir/cmake/pypool/pypoolConfig.cmake" || { echo "no CMake package installed"; exit 1; }
cp -R "$src/tests/packaging/cmake_consumer" "$tmp/consumer"
cp "$src/tests/packaging/consumer.cpp" "$tmp/consumer/"
cmake -S "$tmp/consumer" -B "$tmp/build" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_PREFIX_PATH="$stage" -DPYPOOL_REQUEST="$(meson_value projectinfo version)" \
    -DCMAKE_CXX_FLAGS="$sanflags" -DCMAKE_EXE_LINKER_FLAGS="$sanflags" \
    >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
grep "found pypool" "$tmp/cmake.log"
cmake --build "$tmp/build" -j 2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
run_consumer "$tmp/build/consumer"
