# Shared by the packaging tests: arguments, a temp dir, a DESTDIR install of the build.
# Usage: <test>.sh SOURCE_ROOT BUILD_ROOT B_SANITIZE CXX
set -eu
src=$1
build=$2
san=$3
cxx=$4
sanflags=
if [ "$san" != none ] && [ -n "$san" ]; then sanflags="-fsanitize=$san"; fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pypool-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# The project's version and prefix, as Meson configured this build.
meson_value() {  # meson_value projectinfo|buildoptions KEY
    meson introspect "$build" --"$1" | python3 -c '
import json, sys
data = json.load(sys.stdin)
key = sys.argv[1]
if isinstance(data, dict):
    print(data[key])
else:
    print(next(o["value"] for o in data if o["name"] == key))' "$2"
}

# Installs this build (already built: meson test builds first) under $tmp/dest.
install_build() {
    meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log"; exit 1; }
    prefix=$(meson_value buildoptions prefix)
    libdir=$(meson_value buildoptions libdir)
    stage="$tmp/dest$prefix"
    case $libdir in /*) stage_libdir="$tmp/dest$libdir" ;; *) stage_libdir="$stage/$libdir" ;; esac
    test -f "$stage/include/pypool/version.hpp" || { echo "version.hpp not installed"; exit 1; }
    test -f "$stage/include/pypool/detail/pool_core.hpp" || { echo "detail headers not installed"; exit 1; }
}

# Runs the consumer and checks its line.
run_consumer() {
    out=$("$@")
    echo "$out"
    version=$(meson_value projectinfo version)
    echo "$out" | grep -q "^pypool $version: apply_async 5=5, map \[1, 4, 9\]=\[1, 4, 9\], imap 9=9, asio 7=7\$" ||
        { echo "unexpected output (version $version)"; exit 1; }
}
