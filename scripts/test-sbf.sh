#!/usr/bin/env bash
# The Quantumagi program's checks: no `unsafe` anywhere under programs/ (the runbook's pre-deployment check),
# the SBF build (scripts/build-sbf.sh, which installs its toolchain), and the tests in a real SVM (LiteSVM)
# against that binary (which also print its compute-unit and rent costs), including `acgs chain` end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== no unsafe code under programs/"
if grep -rn --include='*.rs' unsafe programs/; then
  echo "unsafe code found under programs/" >&2
  exit 1
fi

bash scripts/build-sbf.sh
export QUANTUMAGI_SO="$PWD/target/sbf/quantumagi.so"
# `acgs chain` is tested end to end against the program in LiteSVM behind a JSON-RPC front.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/acgs-target}"
cargo build --locked --quiet -p acgs-cli
export ACGS_BIN="$CARGO_TARGET_DIR/debug/acgs"
echo "== Quantumagi tests in LiteSVM"
cd programs/quantumagi/svm
CARGO_TARGET_DIR="${ACGS_SVM_TARGET:-$HOME/.cache/acgs-svm-target}" cargo test --locked "$@"
