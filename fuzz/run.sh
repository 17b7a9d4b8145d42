#!/usr/bin/env bash
# Fuzzes one target: fuzz/run.sh TARGET SECONDS [extra libFuzzer flags].
#
# First replays fuzz/regressions/TARGET (inputs that once crashed), then
# fuzzes for SECONDS from the committed seeds (fuzz/seeds/TARGET) and the corpus earlier
# runs grew (fuzz/corpus/TARGET, git-ignored). A crash is saved under
# fuzz/artifacts/TARGET/ and the script exits non-zero. The last line is a
# summary: target, seconds, executions, coverage, corpus, new crash artifacts.
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 2 ]; then
  echo "usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]; targets: $(ls "$fuzz/fuzz_targets" | sed 's/\.rs$//' | tr '\n' ' ')" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
if [ ! -f "$fuzz/fuzz_targets/$target.rs" ]; then
  echo "fuzz/run.sh: no target $target; the targets are the files in fuzz/fuzz_targets/" >&2
  exit 2
fi
"$fuzz/build.sh" "$target" >&2
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$fuzz/target/$host/release/$target"

# Scratch files of the file-reading targets stay inside fuzz/target.
export TMPDIR="$fuzz/target/tmp/$target"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR" "$fuzz/corpus/$target" "$fuzz/artifacts/$target" "$fuzz/target/logs"
log="$fuzz/target/logs/$target.log"

# Room for a message just over the 4096-point chunk limit (131 KiB).
case $target in
  frame | wire | psi_message) max_len=140000 ;;
  *) max_len=8192 ;;
esac

status=0
regressions=("$fuzz/regressions/$target"/*)
if [ -e "${regressions[0]}" ]; then
  echo "replaying ${#regressions[@]} regression input(s) of $target" >&2
  "$bin" -rss_limit_mb=2048 "${regressions[@]}" >"$log.regressions" 2>&1 || {
    status=$?
    grep -A 6 -E "^(thread .* panicked|memory allocation|==[0-9]+== ERROR)" "$log.regressions" >&2 || tail -n 30 "$log.regressions" >&2
    echo "fuzz/run.sh: $target crashes on a committed regression input (see above)" >&2
  }
fi

started=$SECONDS
touch "$log.start"
"$bin" "$fuzz/corpus/$target" "$fuzz/seeds/$target" \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$fuzz/artifacts/$target/" "$@" >"$log" 2>&1 || {
  status=$?
  grep -A 6 -m1 -E "^(==[0-9]+== ERROR|thread .* panicked|memory allocation)" "$log" >&2 || tail -n 30 "$log" >&2
}
elapsed=$((SECONDS - started))
rm -rf "$TMPDIR"

# libFuzzer's last status line and final statistics.
done_line=$(grep -E "^#[0-9]+" "$log" | tail -n 1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$done_line")
crashes=$(find "$fuzz/artifacts/$target" -type f -newer "$log.start" | wc -l)
echo "fuzz $target: ${elapsed}s, ${execs:-?} execs (${rate:-?}/s), cov ${cov:-?}, features ${ft:-?}, corpus ${corp:-?}, artifacts $crashes, exit $status"
exit "$status"
