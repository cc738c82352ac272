#!/usr/bin/env bash
# `make test` on a fresh clone of this repository while two busy loops keep both cores busy:
# the suite must pass on a busy machine. Usage: bench/suite_under_load.sh [WORKDIR]
set -u
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/suite-under-load}"
rm -rf "$work" && mkdir -p "$work"
git clone -q "$repo" "$work/main" && ln -s "$repo/../shared" "$work/shared"
cd "$work/main" || exit 2
python3 -c 'while True: pass' & a=$!
python3 -c 'while True: pass' & b=$!
trap 'kill $a $b' EXIT
start=$(date +%s)
make test > "$work/test.log" 2>&1; rc=$?
echo "make test: exit $rc in $(( $(date +%s) - start )) s (log: $work/test.log)"
tail -1 "$work/test.log"
exit $rc
