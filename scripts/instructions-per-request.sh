#!/usr/bin/env bash
# Instructions the server executes per decision, counted by callgrind: unlike CPU time on a shared VM, the same
# binary and load give the same total within ~1 % (the writer's share, which depends on batching, within ~4 %; the
# checkpointer's, which runs on a clock, within ~20 %), so it shows what a change to the decision path saves.
# Starts `acgs up` under valgrind on a fresh data directory in /dev/shm, warms it up, then counts while
# `acgs bench` sends 2,000 decisions (200/s for 10 s), and prints the instructions per decision in all and
# in the main parts: HTTP connections (parsing, middleware, handler, response), the decision engine, the
# group-commit writer and the WAL checkpointer. Valgrind reports no SHA extensions, so SHA-256 runs in
# software here, with many more instructions than on a CPU with them (the writer's leaf hashes show it).
#
# Usage: scripts/instructions-per-request.sh [OUT_FILE]   (needs valgrind; ACGS_BIN as in http-bench.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/acgs-target}"
source scripts/bench-server.sh
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
acgs_binary
out="${1:-$(mktemp /tmp/acgs-callgrind.XXXXXX)}"
data=$(mktemp -d /dev/shm/acgs-callgrind.XXXXXX)
port=18097
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
  "$acgs" up --data-dir "$data/d" --listen "127.0.0.1:$port" --public-metrics >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
key=$(agent_key "$port" "$data/server.log")
decisions() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^acgs_decisions_total/ {n += $2} END {print n + 0}'; }

"$acgs" bench --url "http://127.0.0.1:$port" --api-key "$key" --rate 100 --duration 3 --warmup 1 >/dev/null 2>&1 || true
before=$(decisions)
callgrind_control -i on "$server" >/dev/null 2>&1
# The count is per decision the server made (from /metrics), so a run that falls short of 200/s (the server
# under valgrind on a slow host) still counts correctly; only a run with no decisions at all is an error.
"$acgs" bench --url "http://127.0.0.1:$port" --api-key "$key" --rate 200 --duration 10 --warmup 0 >/dev/null 2>&1 ||
  echo "note: the load generator fell short of 200 decisions/s under valgrind; counting what was decided" >&2
callgrind_control -i off "$server" >/dev/null 2>&1
after=$(decisions)
kill -INT "$server"
wait "$server" 2>/dev/null || true
trap 'rm -rf "$data"' EXIT
[ "$after" -gt "$before" ] || { echo "the server made no decisions while counted" >&2; exit 1; }

callgrind_annotate --inclusive=yes --auto=no "$out" 2>/dev/null | python3 -c '
import re, sys
requests = int(sys.argv[1])
parts = {
    "HTTP connections": "axum::serve::handle_connection::{{closure}}::{{closure}} ",
    "  of which the decision engine": "acgs_engine::decision::decide ",
    "group-commit writer": "acgs_store::log::run_blocking_writer",
    "WAL checkpointer": "acgs_store::sqlite::checkpointer::Checkpointer::pass ",
}
found = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s", line)
    if not m:
        continue
    count = int(m.group(1).replace(",", ""))
    if "PROGRAM TOTALS" in line:
        found["all threads"] = count
    for name, symbol in parts.items():
        if re.search(re.escape(symbol.strip()) + r"( |$)", line) and name not in found:
            found[name] = count
print(f"{requests} decisions counted")
for name in ["all threads", *parts]:
    if name in found:
        print(f"{name:32} {found[name] / requests:>10,.0f} instructions per decision")
' "$((after - before))"
echo "callgrind profile: $out (callgrind_annotate --inclusive=yes $out)"
