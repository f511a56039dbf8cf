#!/usr/bin/env bash
# End-to-end HTTP benchmark on this machine: builds the release binary, starts `acgs up` on a fresh data
# directory, drives it with `acgs bench` (open loop, fixed rate), and prints the latency report plus the CPU time
# the server and the load generator used per request, the time their threads spent runnable but waiting for a
# CPU (from /proc/PID/task/*/schedstat), the group commit's batch size, how many commits took over 1 and 5 ms and how
# long the WAL checkpoint passes took (from /metrics; counted over the whole run, warm-up included). It flushes the
# page cache's dirty data (`sync`) before starting the server, so that a build's write-back is not measured.
# The load is sent by the gateway the first start creates (its API key, from the server's output), so every
# request is authenticated and authorized as in production; /metrics is made public for the script.
#
# Usage: scripts/http-bench.sh [RATE [DURATION_S [DATA_DIR]]] [-- extra `acgs up` flags]
#   RATE 5000, DURATION_S 10, DATA_DIR a fresh directory under /var/tmp (on the disk; use /dev/shm/... for tmpfs)
# Example: scripts/http-bench.sh 5000 10 /var/tmp/acgs-bench -- --sqlite-sync normal
# Set ACGS_BIN=/path/to/acgs to run that binary instead of building this checkout's, and ACGS_BENCH_FLAGS to pass
# flags to `acgs bench` (e.g. ACGS_BENCH_FLAGS="--connections 32").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/acgs-target}"
source scripts/bench-server.sh

rate=5000
duration=10
data=""
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ "${#positional[@]}" -ge 1 ] && rate="${positional[0]}"
[ "${#positional[@]}" -ge 2 ] && duration="${positional[1]}"
[ "${#positional[@]}" -ge 3 ] && data="${positional[2]}"
if [ -z "$data" ]; then
  data=$(mktemp -d /var/tmp/acgs-bench.XXXXXX)
fi
rm -rf "$data"
warmup=2
port=18099

acgs_binary
# Write back now what earlier commands left dirty in the page cache (a build's output, the last run's files), not
# during the measured window: the kernel writes dirty pages back 30 s after they were written, and a few hundred
# MB written back beside the commits' flushes delays them by up to ~160 ms (docs/performance-history.md).
sync
"$acgs" up --data-dir "$data" --listen "127.0.0.1:$port" --public-metrics "$@" >"$data.server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data" "$data.server.log"' EXIT
key=$(agent_key "$port" "$data.server.log")

# CPU time used and time spent runnable but waiting for a CPU, summed over a process's threads (nanoseconds).
cpu_and_wait() { cat /proc/"$1"/task/*/schedstat | awk '{run += $1; wait += $2} END {printf "%d %d", run, wait}'; }
# shellcheck disable=SC2086 # ACGS_BENCH_FLAGS is a list of flags
"$acgs" bench --url "http://127.0.0.1:$port" --api-key "$key" --rate "$rate" --duration "$duration" \
  --warmup "$warmup" ${ACGS_BENCH_FLAGS:-} &
client=$!
# CPU over the middle of the measured window (after the warm-up, before the end).
sleep $((warmup + 1))
s0=$(cpu_and_wait $server); c0=$(cpu_and_wait $client)
window=$((duration - 2))
sleep "$window"
s1=$(cpu_and_wait $server); c1=$(cpu_and_wait $client)
wait $client || true
metrics=$(curl -s "http://127.0.0.1:$port/metrics")
METRICS="$metrics" python3 - "$rate" "$window" $s0 $s1 $c0 $c1 <<'PY'
import os, re, sys
rate, window, s0_run, s0_wait, s1_run, s1_wait, c0_run, c0_wait, c1_run, c1_wait = (float(x) for x in sys.argv[1:])
metrics = {}
for line in os.environ["METRICS"].splitlines():
    m = re.match(r'^(\w+)(\{[^}]*\})? (\S+)$', line.strip())
    if m:
        metrics[m.group(1) + (m.group(2) or "")] = float(m.group(3))
def metric(name, labels=""):
    return metrics.get(name + (labels and "{" + labels + "}"), 0.0)
requests = rate * window
def per_request(ns):
    return ns / 1e3 / requests
batch = metric("acgs_audit_batch_size_sum") / max(metric("acgs_audit_batch_size_count"), 1)
commits = metric("acgs_audit_write_seconds_count")
slow = commits - metric("acgs_audit_write_seconds_bucket", 'le="0.001"')
stalled = commits - metric("acgs_audit_write_seconds_bucket", 'le="0.005"')
passes = metric("acgs_sqlite_wal_checkpoint_seconds_count")
pass_ms = metric("acgs_sqlite_wal_checkpoint_seconds_sum") / max(passes, 1) * 1e3
long_passes = passes - metric("acgs_sqlite_wal_checkpoint_seconds_bucket", 'le="0.01"')
print(f"server CPU {per_request(s1_run - s0_run):.0f} µs per request "
      f"(its threads waited {per_request(s1_wait - s0_wait):.0f} µs for a CPU), "
      f"load generator {per_request(c1_run - c0_run):.0f} µs "
      f"(waited {per_request(c1_wait - c0_wait):.0f} µs), "
      f"group commit {batch:.2f} decisions per commit")
print(f"commits {commits:.0f}, {slow:.0f} of them over 1 ms, {stalled:.0f} over 5 ms; WAL checkpoint passes "
      f"{passes:.0f}, {pass_ms:.1f} ms each on average, {long_passes:.0f} over 10 ms")
PY
