# Shared by the benchmark scripts (sourced, not run): which `acgs` binary to run, and waiting for a freshly
# started `acgs up` until it is ready and has printed the API keys of its first start.

# Sets `acgs`: $ACGS_BIN if set (to compare two builds in interleaved runs), else this checkout's release build.
acgs_binary() {
  if [ -n "${ACGS_BIN:-}" ]; then
    acgs="$ACGS_BIN"
  else
    cargo build --release -q -p acgs-cli
    acgs="$CARGO_TARGET_DIR/release/acgs"
  fi
}

# agent_key PORT SERVER_LOG: waits (up to 2 minutes; a server under valgrind starts slowly) until the server on
# PORT is ready, then prints the key the load generator sends from its output: the gateway's (the mix asks for
# many agents; the agent key of a first start decides for one), or the agent's from a build before gateways.
agent_key() {
  local port=$1 log=$2
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
  for _ in $(seq 1 50); do grep -q "agent API key:" "$log" && break; sleep 0.1; done
  local key
  key=$(awk '/gateway API key:/ {print $4}' "$log")
  [ -n "$key" ] || key=$(awk '/agent API key:/ {print $4}' "$log")
  [ -n "$key" ] || { echo "the server printed no API key:" >&2; cat "$log" >&2; return 1; }
  echo "$key"
}
