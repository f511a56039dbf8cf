#!/usr/bin/env bash
# Checks the HTTP API against its own OpenAPI document with schemathesis (from PyPI, pinned below): builds the
# `acgs` binary (debug: it shares CI's test build, and overflow checks turn silent wrap-arounds into 500s),
# starts it on 127.0.0.1 with a fresh data directory, and runs every operation, all phases (examples,
# coverage, fuzzing, stateful) and all checks twice:
#   1. with the bootstrap agent API key (most operations answer 403: the refusals are checked too);
#   2. as the administrator, who is first given every role so that every operation is reached past
#      authorization (schemathesis logs in through POST /v1/auth/login and again whenever it gets a 401, so
#      a logout or `rotate-all` does not lock the run out; the script fails if the administrator cannot log in
#      afterwards).
# Any 5xx, any response (status, media type, body, headers) that the document does not describe, any invalid
# request the server accepts, and any valid one it refuses fails the script; see docs/api.md.
#
# Environment: ACGS_FUZZ_EXAMPLES (examples per operation and phase, default 50), ACGS_FUZZ_SEED (default
# 20261207), ACGS_FUZZ_KEEP=1 keeps the work directory (server log, reports).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/acgs-target}"
venv="$HOME/.cache/acgs-schemathesis-$SCHEMATHESIS_VERSION"
examples="${ACGS_FUZZ_EXAMPLES:-50}"
seed="${ACGS_FUZZ_SEED:-20261207}"

if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
st="$venv/bin/schemathesis"

echo "== building acgs (debug)"
cargo build --locked --quiet -p acgs-cli
acgs="$CARGO_TARGET_DIR/debug/acgs"

work=$(mktemp -d "${TMPDIR:-/tmp}/acgs-api-fuzz.XXXXXX")
server_pid=""
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ]; then
    echo "== the server's last log lines ($work/server.log)" >&2
    tail -n 30 "$work/server.log" >&2 || true
  fi
  if [ "$status" = 0 ] && [ "${ACGS_FUZZ_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "(kept $work)" >&2
  fi
}
trap cleanup EXIT

# A port of its own (the server prints the one it got), a throwaway administrator password, and neither login
# throttling nor lockouts: the fuzzer tries usernames it has seen in responses, "admin" included, and its failed
# logins would otherwise get its own logins refused (429) or lock the administrator out.
export ACGS_FUZZ_ADMIN_PASSWORD
ACGS_FUZZ_ADMIN_PASSWORD="fuzz-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
ACGS_BOOTSTRAP_ADMIN_PASSWORD="$ACGS_FUZZ_ADMIN_PASSWORD" ACGS_LOGIN_SOURCE_THRESHOLD=1000000000 \
  ACGS_LOCKOUT_THRESHOLD=1000000000 \
  ACGS_LOG_LEVEL=info "$acgs" up --data-dir "$work/data" --listen 127.0.0.1:0 \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 120); do
  grep -q 'agent API key:' "$work/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "the server did not start" >&2; cat "$work/server.out" >&2; exit 1; }
  sleep 0.5
done
base=$(sed -n 's/^ACGS is running at \(http[^ ]*\).*/\1/p' "$work/server.out")
short_hash=$(sed -n 's/.*constitutional hash: .* (short \([0-9a-f]*\)).*/\1/p' "$work/server.out")
export ACGS_FUZZ_AGENT_KEY
ACGS_FUZZ_AGENT_KEY=$(sed -n 's/.*agent API key: *//p' "$work/server.out")
[ -n "$base" ] && [ -n "$short_hash" ] && [ -n "$ACGS_FUZZ_AGENT_KEY" ] || {
  echo "cannot read the address, hash or agent key from the server's output" >&2
  cat "$work/server.out" >&2
  exit 1
}
echo "== server at $base (constitution $short_hash)"

# Shared settings. Every request names the active constitution, so that requests reach the handlers rather
# than the 409 every other hash gets (tests/http.rs covers the 409 itself).
# positive_data_acceptance ("a request the schema allows is not refused with 400") is off where validity
# depends on more than the document can say: decisions (the constitution's actions, entity types and
# attributes), a password change (the current password), a logout (API keys have no session), the proofs
# (seq ≤ size, from ≤ to), a drafted amendment (its constitution must validate and differ from the one in
# force), an authority transfer (the constitution with the new sets must validate: a threshold no larger than
# its set), a ruling (its expected outcome must differ from the appealed decision's; drafting an amendment
# needs one), a verification job (its constitution must validate, or its amendment exist; exactly one of the two),
# the registry's writes (an entity must conform to the constitution's schema) and its list (a parent is named by
# `parent_type` and `parent_id` together).
common_config() {
  cat <<EOF
seed = $seed
workers = 1
continue-on-failure = true
request-timeout = 30
headers = { X-Constitutional-Hash = "$short_hash" }

[generation]
max-examples = $examples
database = "none"

[checks]
enabled = true

$(for op in "POST /v1/decisions" "POST /v1/decisions/batch" "POST /v1/auth/password" "POST /v1/auth/logout" \
  "GET /v1/audit/proof/inclusion" "GET /v1/audit/proof/consistency" "POST /v1/amendments" \
  "POST /v1/emergency/transfers" "POST /v1/appeals/{id}/rulings" "POST /v1/verify" \
  "GET /v1/entities" "PUT /v1/entities/{type}/{id}" "PATCH /v1/entities/{type}/{id}" "POST /v1/entities/import"; do
    printf '[[operations]]\ninclude-name = "%s"\nchecks.positive_data_acceptance.enabled = false\n\n' "$op"
  done)
EOF
}

{
  common_config
  cat <<'EOF'
[auth.openapi.bearer]
bearer = "${ACGS_FUZZ_AGENT_KEY}"
EOF
} >"$work/agent.toml"

{
  common_config
  cat <<'EOF'
# The administrator changes users, but only one made for it: were the username drawn from a response, the
# administrator could reset its own password and lock the run out.
[[operations]]
include-name = "PATCH /v1/auth/users/{username}"
parameters = { username = "fuzz-target" }

[auth.dynamic.openapi.bearer]
path = "/v1/auth/login"
payload = { username = "admin", password = "${ACGS_FUZZ_ADMIN_PASSWORD}" }
extract_selector = "/access_token"
retry_on = [401]
EOF
} >"$work/admin.toml"

run() {
  local name=$1
  echo "== schemathesis: $name"
  (cd "$work" && "$st" --config-file "$work/$name.toml" run "$base/openapi.json" \
    --phases examples,coverage,fuzzing,stateful --no-color \
    --report junit --report-dir "$work/reports-$name")
}

run agent

# The administrator holds every role for its run.
login() {
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$ACGS_FUZZ_ADMIN_PASSWORD\"}" "$base/v1/auth/login" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
token=$(login)
[ -n "$token" ] || { echo "cannot log in as the administrator" >&2; exit 1; }
curl -sf -X PATCH -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"roles":["admin","council","proposer","reviewer","auditor","operator","agent","gateway","monitor"]}' \
  "$base/v1/auth/users/admin" >/dev/null
curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"username":"fuzz-target","roles":["auditor"]}' "$base/v1/auth/users" >/dev/null

run admin

# The run must not have locked the administrator out (its credentials worked to the end).
token=$(login)
[ -n "$token" ] && curl -sf -H "Authorization: Bearer $token" "$base/v1/auth/me" >/dev/null || {
  echo "the administrator's run locked the administrator out" >&2
  exit 1
}
echo "== schemathesis: no findings"
