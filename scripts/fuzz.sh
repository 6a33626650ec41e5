#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time and prints executions and crashes per target
# (`make fuzz`). Usage: scripts/fuzz.sh BUILD_DIR SECONDS TARGET...
# A target stops at its first crash (libFuzzer's default); the crashing input is kept in
# BUILD_DIR/crashes/<target>/ to become a regression test. Exits 1 when any target crashed.
set -u
build=$1 seconds=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
rows=()
for target in "$@"; do
  binary=$build/fuzz/fuzz_$target
  if [[ ! -x $binary ]]; then
    echo "fuzz.sh: no $binary; build it with make fuzz" >&2
    exit 2
  fi
  corpus=$build/corpus/$target crashes=$build/crashes/$target log=$build/fuzz-$target.log
  mkdir -p "$corpus" "$crashes"
  # New inputs go to the first corpus folder, so the committed seeds stay as they are.
  "$binary" "$corpus" "$root/fuzz/corpus/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  found=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  if (( found > 0 )); then
    status=1
    echo "fuzz.sh: $target crashed; see $log and $crashes/" >&2
  fi
  rows+=("$(printf '%-16s %12s %8s' "$target" "${executions:-?}" "$found")")
done
printf '%-16s %12s %8s\n' target executions crashes
printf '%s\n' "${rows[@]}"
exit $status
