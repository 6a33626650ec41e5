#!/usr/bin/env bash
# Training time and peak memory of the voice against the amount of speech (issue 10; `make
# bench-train`): for each length, a sample person of that many minutes of video (seed 5) is made,
# ingested and prepared, then `dself train voice` runs under /usr/bin/time. Prints one row per
# length: kept speech, steps, wall time, CPU time and peak resident memory.
# Usage: scripts/bench_train.sh DSELF WORK_DIR VOICE THREADS MINUTES...
set -eu
dself=$1 work=$2 voice=$3 threads=$4
shift 4
rows=()
for minutes in "$@"; do
  dir=$work/train-$voice-$minutes
  rm -rf "$dir"
  "$dself" --quiet sample --out "$dir/sample" --minutes "$minutes" --videos 2 --voice "$voice" --seed 5
  "$dself" --quiet --avatar "$dir/avatar" ingest "$dir/sample" >/dev/null
  "$dself" --quiet --avatar "$dir/avatar" prepare >/dev/null
  /usr/bin/time -v -o "$dir/train.time" "$dself" --quiet --avatar "$dir/avatar" train voice --threads "$threads"
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/train.time")
  user=$(sed -n 's/.*User time (seconds): //p' "$dir/train.time")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/train.time")
  summary=$("$dself" --avatar "$dir/avatar" status --json | python3 -c \
    'import json,sys; d=json.load(sys.stdin); s=d["trained"]["voice"]["summary"]; print("%.1f %d" % (s.get("speech_s",0)/60, s.get("steps",0)))')
  rows+=("$(printf '%-8s %-12s %-7s %-10s %-10s %-8s' "$minutes" "${summary% *}" "${summary#* }" "$wall" "$user" "$((rss / 1024))")")
done
printf '\nvoice %s, %s thread(s)\n%-8s %-12s %-7s %-10s %-10s %-8s\n' "$voice" "$threads" "video_min" "speech_min" "steps" \
  "wall" "cpu_s" "peak_MiB"
printf '%s\n' "${rows[@]}"
