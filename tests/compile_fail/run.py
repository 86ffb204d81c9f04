#!/usr/bin/env python3
"""Compile-fail test runner (docs/ERRORS.md, "Compile errors").

Usage: run.py SNIPPET.cpp -I... -- COMPILER [ARGS...]

A snippet holds a mistake on the line marked `// error-here`, the fix under
`#ifdef PYPOOL_FIXED`, and `// expect: TEXT` lines. The test passes when
  - the snippet fails to compile,
  - every expected TEXT occurs in the compiler's output,
  - the first diagnostic that names the snippet points at the marked line and belongs
    to the first error (the error lands at the user's call), and
  - the fixed snippet compiles (so the failure is the one meant, not a typo).
"""
import os
import re
import subprocess
import sys


def main() -> int:
    argv = sys.argv[1:]
    sep = argv.index("--")
    snippet, flags, compiler = argv[0], argv[1:sep], argv[sep + 1:]
    with open(snippet, encoding="utf-8") as f:
        lines = f.read().splitlines()
    expects = [l.split("// expect:", 1)[1].strip() for l in lines if "// expect:" in l]
    marked = [i + 1 for i, l in enumerate(lines) if "// error-here" in l]
    if len(marked) != 1 or not expects:
        print(f"{snippet}: needs one '// error-here' line and '// expect:' lines")
        return 1
    base = compiler + ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra"] + flags
    env = dict(os.environ, LC_ALL="C")
    bad = subprocess.run(base + [snippet], capture_output=True, text=True, env=env)
    out = bad.stdout + bad.stderr
    ok = True
    if bad.returncode == 0:
        print("FAIL: the snippet compiled")
        ok = False
    for e in expects:  # "a | b": either text (g++ and clang spell types differently)
        if not any(alt.strip() in out for alt in e.split(" | ")):
            print(f"FAIL: expected text not in the output: {e!r}")
            ok = False
    name = os.path.basename(snippet)
    here = f"{name}:{marked[0]}:"
    # a diagnostic located in the snippet (not "In file included from", not a type name
    # such as clang's "(lambda at snippet.cpp:12:17)")
    first_user = next((i for i, l in enumerate(out.splitlines())
                       if re.match(r"(\S*/)?" + re.escape(name) + r":\d+:\d+: ", l)), None)
    error_lines = [i for i, l in enumerate(out.splitlines()) if re.search(r"\berror:", l)]
    if first_user is None or here not in out.splitlines()[first_user]:
        print(f"FAIL: the first line naming {name} is not its line {marked[0]}")
        ok = False
    elif len(error_lines) > 1 and error_lines[1] < first_user:
        # g++ names the user's line before the first error (or in it); clang names it in
        # the notes of the first error, before the second
        print("FAIL: the first error does not name the user's call")
        ok = False
    errors = len(error_lines)
    print(f"{name}: exit {bad.returncode}, {len(out.splitlines())} lines, {errors} error(s)")
    fixed = subprocess.run(base + ["-DPYPOOL_FIXED", snippet], capture_output=True, text=True,
                           env=env)
    if fixed.returncode != 0:
        print("FAIL: the fixed snippet does not compile:")
        print(fixed.stdout + fixed.stderr)
        ok = False
    if not ok:
        print("---- compiler output ----")
        print(out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
