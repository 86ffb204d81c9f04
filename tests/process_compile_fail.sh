#!/bin/sh
# Compile-fail checks for ProcessPool (issue 12): every tests/compile_fail/process/*.cpp except the
# control (a first line "// expect: compiles") must fail to compile, and the compiler's
# output must contain each "// expect: WORDS" line of the snippet (the static_assert
# message's key words). The control must compile.
# Usage: process_compile_fail.sh SOURCE_ROOT BUILD_ROOT CXX [CXX ARGS...]
set -u
src=$1
build=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pypool-compile-fail.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0
fail=0
for f in "$src"/tests/compile_fail/process/*.cpp; do
    name=$(basename "$f" .cpp)
    log="$tmp/$name.log"
    if "$@" -std=c++20 -fsyntax-only -I"$src/include" -I"$build/include" "$f" >"$log" 2>&1; then
        compiled=yes
    else
        compiled=no
    fi
    if head -1 "$f" | grep -q '^// expect: compiles$'; then
        if [ $compiled = yes ]; then
            echo "PASS $name (compiles)"; pass=$((pass + 1))
        else
            echo "FAIL $name: the control does not compile:"; head -30 "$log"; fail=$((fail + 1))
        fi
        continue
    fi
    if [ $compiled = yes ]; then
        echo "FAIL $name: compiled, but must not"; fail=$((fail + 1)); continue
    fi
    missing=""
    grep '^// expect: ' "$f" | sed 's|^// expect: ||' >"$tmp/$name.expect"
    while IFS= read -r words; do
        grep -qF -- "$words" "$log" || missing="$missing [$words]"
    done <"$tmp/$name.expect"
    if [ -z "$missing" ]; then
        echo "PASS $name (does not compile, message says what to do)"; pass=$((pass + 1))
    else
        echo "FAIL $name: the compiler's message lacks:$missing"; grep -m3 'error' "$log"; fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
