#!/usr/bin/env bash
# Builds fuzz targets with libFuzzer on the stable toolchain: rustc's sancov
# pass gives libFuzzer its coverage feedback (what cargo-fuzz does on nightly,
# without the sanitizer). Usage: fuzz/build.sh [TARGET...] (default: all).
# Prints nothing but cargo's output; the binaries land in
# fuzz/target/<host triple>/release/.
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
if ! command -v c++ >/dev/null 2>&1; then
  echo "fuzz/build.sh: libfuzzer-sys compiles libFuzzer with a C++ compiler; install one (e.g. apt-get install g++)" >&2
  exit 2
fi
host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing"
bins=()
for target in "$@"; do bins+=(--bin "$target"); done
[ ${#bins[@]} -gt 0 ] || bins=(--bins)
cargo build --manifest-path "$fuzz/Cargo.toml" --locked --release --target "$host" "${bins[@]}"
