#!/bin/sh
# Packaging test: a Meson project with pypool as a subproject (subprojects/pypool -> this
# source tree, --force-fallback-for=pypool so an installed copy cannot hide a break), built
# from scratch in a temp dir, then run.
. "$(dirname "$0")/common.sh"
cp -R "$src/tests/packaging/meson_consumer" "$tmp/consumer"
cp "$src/tests/packaging/consumer.cpp" "$tmp/consumer/"
mkdir "$tmp/consumer/subprojects"
ln -s "$src" "$tmp/consumer/subprojects/pypool"
# README's wrap for a local copy (the [provide] line maps dependency('pypool') to it)
printf '[wrap-file]\ndirectory = pypool\n\n[provide]\npypool = pypool_dep\n' \
    >"$tmp/consumer/subprojects/pypool.wrap"
CXX=$cxx meson setup "$tmp/build" "$tmp/consumer" --wrap-mode=nodownload \
    --force-fallback-for=pypool >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; exit 1; }
grep -q "Subproject pypool finished" "$tmp/setup.log" || { cat "$tmp/setup.log"; echo "pypool was not built as a subproject"; exit 1; }
# tests, examples and benchmarks are off in a subproject
if ninja -C "$tmp/build" -t targets all | grep -E "subprojects/pypool/(tests|examples|bench)/"; then
    echo "a subproject pypool builds tests, examples or benchmarks"; exit 1
fi
ninja -C "$tmp/build" -j2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
run_consumer "$tmp/build/consumer"
