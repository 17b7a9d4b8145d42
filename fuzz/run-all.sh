#!/usr/bin/env bash
# Fuzzes every target in turn for SECONDS each: fuzz/run-all.sh SECONDS.
# CI runs it for a few seconds per target; long runs use the same script.
# Goes on past a crashing target so every target is tried, and exits
# non-zero if any crashed.
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
seconds=${1:?usage: fuzz/run-all.sh SECONDS}
"$fuzz/build.sh" >&2
failed=()
summary=()
for file in "$fuzz"/fuzz_targets/*.rs; do
  target=$(basename "$file" .rs)
  if line=$("$fuzz/run.sh" "$target" "$seconds"); then :; else failed+=("$target"); fi
  summary+=("$line")
  echo "$line"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs are under fuzz/artifacts/ (or fuzz/regressions/)" >&2
  exit 1
fi
echo "fuzz: ${#summary[@]} targets, no crash"
