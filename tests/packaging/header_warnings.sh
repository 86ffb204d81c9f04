#!/bin/sh
# Packaging test: users' strict warning flags stay quiet with every public header.
# Compiles tests/packaging/warnings_consumer.cpp (every header of include/pypool/, the main
# members instantiated) with -Wall -Wextra -Wpedantic -Werror at -O0, -O2 and -O3, as a
# user's build does: no project flags, pypool's headers found through -I (not as system
# headers, whose warnings compilers hide).
# Usage: header_warnings.sh SOURCE_ROOT BUILD_ROOT CXX [CXX ARGS...]
set -eu
src=$1
build=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pypool-warnings.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
for opt in -O0 -O2 -O3; do
    if "$@" -std=c++20 -Wall -Wextra -Wpedantic -Werror "$opt" -pthread \
        -I"$src/include" -I"$build/include" \
        -c "$src/tests/packaging/warnings_consumer.cpp" -o "$tmp/consumer.o" >"$tmp/log" 2>&1; then
        echo "$opt: no warnings"
    else
        echo "$opt: the compiler warned (or failed):"
        cat "$tmp/log"
        status=1
    fi
done
exit $status
