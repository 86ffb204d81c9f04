#!/usr/bin/env bash
# Puts the sources of peers-bench's peer thread pools (issue 15) into bench/peers/, which git
# ignores, at pinned tags; scripts/bench then builds bench/peers_bench.cpp with those it finds.
#   bench/peers/bs-thread-pool  BS::thread_pool  v5.1.0   (header-only)
#   bench/peers/taskflow        Taskflow         v4.1.0   (header-only)
#   bench/peers/concurrencpp    concurrencpp     v.0.1.7  (scripts/bench builds its static lib with CMake)
#
# usage: bench/fetch_peers.sh [--force]
#   --force  remove and fetch again the peers already there
# Environment: PYPOOL_PEER_MIRRORS a folder of bare mirrors, <owner>+<name>/repo, cloned from
# instead of https://github.com/<owner>/<name> where present.
set -euo pipefail
cd "$(dirname "$0")"

force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_peers.sh: unknown argument $1" >&2; exit 2 ;;
esac

mkdir -p peers
# dir owner/name tag
while read -r dir repo tag; do
    dest=peers/$dir
    if [ -e "$dest" ] && [ "$force" = 0 ]; then
        echo "$dest: present ($(cat "$dest/PEER_VERSION" 2>/dev/null || echo 'version unknown')), kept"
        continue
    fi
    rm -rf "$dest"
    src=https://github.com/$repo
    mirror=${PYPOOL_PEER_MIRRORS:-}/${repo/\//+}/repo
    if [ -n "${PYPOOL_PEER_MIRRORS:-}" ] && [ -d "$mirror" ]; then src=file://$(cd "$mirror" && pwd); fi
    echo "$dest: $repo $tag from $src"
    git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$tag" "$src" "$dest"
    echo "$tag $(git -C "$dest" rev-parse HEAD)" >"$dest/PEER_VERSION"
done <<'EOF'
bs-thread-pool bshoshany/thread-pool v5.1.0
taskflow taskflow/taskflow v4.1.0
concurrencpp David-Haim/concurrencpp v.0.1.7
EOF
