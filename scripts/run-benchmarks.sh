#!/usr/bin/env bash
# Runs every benchmark binary in BUILD/bench/ (default: build) and prints its
# output; further arguments are passed to each benchmark. Exit status 1 if a
# benchmark failed (a real error: the figures themselves never fail a run).
#
#   ./scripts/run-benchmarks.sh build
#   ./scripts/run-benchmarks.sh build --bytes 512MiB --repeat 5
set -uo pipefail
build=${1:-build}
shift || true
dir="$build/bench"
if [ ! -d "$dir" ]; then
  echo "run-benchmarks: no $dir: build with benchmarks first (make build; FERRY_BENCH is on by default)" >&2
  exit 1
fi
found=0
failed=()
for bin in "$dir"/*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin")
  echo "=== $name"
  if ! "$bin" "$@"; then
    echo "run-benchmarks: $name failed" >&2
    failed+=("$name")
  fi
  echo
done
if [ "$found" = 0 ]; then
  echo "run-benchmarks: no benchmark binaries in $dir"
  exit 0
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run-benchmarks: failed: ${failed[*]}" >&2
  exit 1
fi
echo "run-benchmarks: all benchmarks ran"
