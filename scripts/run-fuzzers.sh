#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a short time.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-20}
if ! ls tests/fuzz/*_fuzz.cpp >/dev/null 2>&1; then
  echo "run-fuzzers: no fuzz targets yet"
  exit 0
fi
CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON -DFERRY_TESTS=OFF -DFERRY_BENCH=OFF
ninja -C "$build"
for target in "$build"/tests/fuzz/*_fuzz; do
  name=$(basename "$target")
  corpus="$build/corpus-$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/${name%_fuzz}"
  echo "run-fuzzers: $name for ${seconds}s"
  if [ -d "$seeds" ]; then
    "$target" -max_total_time="$seconds" -print_final_stats=1 "$corpus" "$seeds"
  else
    "$target" -max_total_time="$seconds" -print_final_stats=1 "$corpus"
  fi
done
