#!/usr/bin/env bash
# Makes sure the SMT solver the formal verifier is pinned to is installed: cvc5 1.0.3, Debian 12's package `cvc5`
# (crates/acgs-verify/src/solver.rs, PINNED_CVC5_VERSION). Installs it from Debian's packages when it is missing;
# refuses (exit 1) when another release is on PATH, since verdicts are only checked against the pinned one.
set -euo pipefail
pinned="1.0.3"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

solver="${ACGS_CVC5:-cvc5}"
if ! command -v "$solver" >/dev/null 2>&1; then
  echo "== installing the SMT solver cvc5 (Debian package cvc5)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cvc5 >/dev/null
fi
version=$("$solver" --version | head -n 1 | sed -E 's/.*cvc5 version ([^ ]+).*/\1/')
if [ "$version" != "$pinned" ]; then
  echo "cvc5 $version is installed; ACGS's verification is pinned to cvc5 $pinned (Debian 12's package)." >&2
  exit 1
fi
