#!/usr/bin/env bash
# Runs the whole ACGS test suite. The storage, HTTP and crash tests run against real SQLite files and a real
# PostgreSQL server; this script makes sure PostgreSQL answers on 127.0.0.1:5432 with a database `test`
# (starting the local cluster, or installing it from Debian's packages on a machine without one), and drops the
# schemas that earlier runs' PostgreSQL tests left there. It installs the SMT solver cvc5 (scripts/install-cvc5.sh). Then the Quantumagi Solana program is built for SBF and
# tested in LiteSVM (scripts/test-sbf.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/acgs-target}"
export ACGS_TEST_POSTGRES_URL="${ACGS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

postgres_ready() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }

ensure_postgres() {
  if postgres_ready && psql "$ACGS_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "== installing PostgreSQL (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! postgres_ready; then
    echo "== starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do postgres_ready && break; sleep 0.5; done
  fi
  if ! psql "$ACGS_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    # A fresh cluster: trust local TCP connections (a test machine) and create the `test` database.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
    as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'test'\" | grep -q 1 || createdb test"
  fi
  psql "$ACGS_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null || {
    echo "PostgreSQL is not reachable at $ACGS_TEST_POSTGRES_URL" >&2
    exit 1
  }
}

# Each PostgreSQL test works in a schema of its own, named acgs_<suite>_test_<pid>_… after its test process.
# Drop those whose process is gone (earlier runs, and this one's once it ends); a run in progress keeps its own.
drop_finished_test_schemas() {
  local sql
  sql=$(psql "$ACGS_TEST_POSTGRES_URL" -qtAc \
    "SELECT nspname FROM pg_namespace WHERE nspname ~ '^acgs_[a-z]+_test_[0-9]+(_[0-9]+)+$'" |
    while read -r schema; do
      pid=$(echo "$schema" | sed -E 's/^acgs_[a-z]+_test_([0-9]+)_.*/\1/')
      [ -e "/proc/$pid" ] || echo "DROP SCHEMA IF EXISTS $schema CASCADE;"
    done)
  # From standard input each statement is a transaction of its own (one for all would run out of locks).
  [ -z "$sql" ] || printf 'SET client_min_messages = warning;\n%s\n' "$sql" |
    psql "$ACGS_TEST_POSTGRES_URL" -qtA -v ON_ERROR_STOP=1 >/dev/null
}

ensure_postgres
drop_finished_test_schemas
# The formal verifier's tests prove things with the pinned cvc5.
bash scripts/install-cvc5.sh
echo "== cargo test (PostgreSQL: $ACGS_TEST_POSTGRES_URL)"
cargo test --workspace --locked "$@"
drop_finished_test_schemas
# The Solana program: built for SBF and tested in a real SVM (installs its toolchain on first use).
bash scripts/test-sbf.sh
