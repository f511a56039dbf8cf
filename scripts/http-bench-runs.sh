#!/usr/bin/env bash
# Repeat scripts/http-bench.sh and summarise the runs: on a shared VM one run says little about the tail.
# Prints each run's p50/p90/p99/p99.9, server CPU per request, how long its threads waited for a CPU and how many
# group commits took over 1 ms, then p99's minimum, median and maximum.
#
# Usage: scripts/http-bench-runs.sh RUNS [http-bench.sh arguments...]
# Example: scripts/http-bench-runs.sh 5 5000 10
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:?usage: scripts/http-bench-runs.sh RUNS [http-bench.sh arguments...]}"
shift
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer, got \`$runs\`" >&2; exit 2; }
p99s=()
for i in $(seq 1 "$runs"); do
  out=$(scripts/http-bench.sh "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  line=$(echo "$out" | grep -E "^ +p(50|90|99|99\.9) |server CPU|^commits " | awk '
    /^ +p/ { printf "%s %s ms  ", $1, $4 }
    /server CPU/ { printf "server CPU %s µs/request (waited %s µs for a CPU)", $3, $10 }
    /^commits / { printf ", commits over 1 ms %s of %s", $3, $2 }' | tr -d ',' | sed 's/ commits over/; commits over/')
  echo "run $i ($(date +%H:%M:%S)): $line"
  p99s+=("$(echo "$out" | awk '$1 == "p99" {print $4}')")
done
printf '%s\n' "${p99s[@]}" | sort -g | awk '
  { v[NR] = $1 }
  END {
    median = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "p99 over %d runs: min %s ms, median %.3f ms, max %s ms\n", NR, v[1], median, v[NR]
  }'
