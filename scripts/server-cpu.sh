#!/usr/bin/env bash
# Server CPU per decision request: starts a release `acgs up` on a scratch data directory, drives it with wrk
# (8 connections, a fixed transfer request from the example constitution) and reads the server's CPU time from
# /proc. Usage: scripts/server-cpu.sh [extra `acgs up` flags, e.g. --sqlite-sync normal]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/acgs-target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p acgs-cli
acgs="$CARGO_TARGET_DIR/release/acgs"
data=$(mktemp -d)
port=18097
"$acgs" up --data-dir "$data" --listen "127.0.0.1:$port" "$@" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data" "$script"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
script=$(mktemp --suffix=.lua)
cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"principal":{"type":"Agent","id":"ap-agent","parents":[{"type":"Role","id":"finance-agent"},{"type":"Team","id":"payables"}],"attributes":{"trust_level":4,"risk_score":10,"suspended":false}},"action":"transfer_funds","resource":{"type":"Account","id":"opex-eur","attributes":{"owner_team":{"__entity":{"type":"Team","id":"payables"}},"currency":"EUR","frozen":false}},"context":{"amount_cents":5000,"currency":"EUR","daily_total_cents":0}}'
LUA
wrk -t1 -c8 -d2s -s "$script" "http://127.0.0.1:$port/v1/decisions" >/dev/null   # warm-up
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
before=$(ticks)
rps=$(wrk -t1 -c8 -d5s -s "$script" "http://127.0.0.1:$port/v1/decisions" | awk '/^Requests\/sec/ {print $2}')
after=$(ticks)
hz=$(getconf CLK_TCK)
python3 -c "r=$rps; c=($after-$before)/$hz; print(f'{r:.0f} decisions/s over 5 s; server CPU {c:.2f} s = {c*1e6/(r*5):.0f} µs per decision')"
