#!/usr/bin/env bash
# Builds the Quantumagi Solana program (programs/quantumagi) into an SBPF v0 shared object that the Agave runtime
# executes, using only Debian packages and crates.io (no `cargo build-sbf`, which needs GitHub):
#   1. Debian's rustc-web (rustc with LLVM 22) and its prebuilt core library for bpfel-unknown-none;
#   2. sbpf-linker, built against that LLVM, as the linker;
#   3. cargo build of the program for bpfel-unknown-none with the workspace's `sbf` profile.
# Prints the path and size of the result: target/sbf/quantumagi.so (override with ACGS_SBF_OUT).
#
# The tools go to ACGS_SBF_TOOLS (default ~/.cache/acgs-sbf) and the build to ACGS_SBF_TARGET (default
# ~/.cache/acgs-sbf/target), apart from the host build so the two toolchains never invalidate each other.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${ACGS_SBF_TOOLS:-$HOME/.cache/acgs-sbf}"
target_dir="${ACGS_SBF_TARGET:-$tools/target}"
out="${ACGS_SBF_OUT:-target/sbf/quantumagi.so}"
# The toolchain this build is known to work with. A different LLVM major needs another sbpf-linker feature
# (upstream-gallery-NN); a different rustc may change code generation: both stop the build with a message.
llvm_major=22
rustc_release=1.96
linker_version=0.1.9

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/bpfel-unknown-none ] || [ ! -x "/usr/lib/llvm-$llvm_major/bin/llvm-config" ]; then
  echo "== installing rustc-web with the BPF core library and LLVM $llvm_major (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    rustc-web libstd-rust-web-dev-bpf "llvm-$llvm_major-dev" >/dev/null
fi

version=$(/usr/bin/rustc -vV)
release=$(echo "$version" | sed -n 's/^release: //p')
llvm=$(echo "$version" | sed -n 's/^LLVM version: //p')
if [ "${llvm%%.*}" != "$llvm_major" ] || [ "${release%.*}" != "$rustc_release" ]; then
  echo "build-sbf: /usr/bin/rustc is $release with LLVM $llvm; this build is pinned to rustc $rustc_release with" >&2
  echo "LLVM $llvm_major (Debian's rustc-web changed?). Update llvm_major, rustc_release and the sbpf-linker" >&2
  echo "feature upstream-gallery-NN in scripts/build-sbf.sh together, then rebuild and rerun the SVM tests." >&2
  exit 1
fi

linker="$tools/bin/sbpf-linker"
stamp="$tools/sbpf-linker.version"
if [ ! -x "$linker" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$linker_version llvm-$llvm_major" ]; then
  echo "== building sbpf-linker $linker_version against LLVM $llvm_major (a few minutes, once)"
  LLVM_PREFIX="/usr/lib/llvm-$llvm_major" LLVM_SYS_221_PREFIX="/usr/lib/llvm-$llvm_major" \
    cargo install --locked --quiet "sbpf-linker@$linker_version" --no-default-features \
      --features "upstream-gallery-$llvm_major" --root "$tools"
  echo "$linker_version llvm-$llvm_major" >"$stamp"
fi

echo "== building programs/quantumagi for bpfel-unknown-none (rustc $release, LLVM $llvm)"
export CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER="$linker"
export CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS="-C panic=abort -C relocation-model=static \
-C link-arg=--llvm-args=--bpf-stack-size=4096 -C link-arg=--cpu-features=+allows-misaligned-mem-access \
-C link-arg=--llvm-args=--disable-ldsx -C link-arg=--llvm-args=--disable-movsx"
RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$target_dir" \
  cargo build --locked --quiet -p quantumagi-program --target bpfel-unknown-none --profile sbf

built="$target_dir/bpfel-unknown-none/sbf/libquantumagi_program.so"
mkdir -p "$(dirname "$out")"
cp "$built" "$out"
size=$(stat -c %s "$out")
echo "built $out: $size bytes"
if [ "$size" -ge 204800 ]; then
  echo "build-sbf: the program is $size bytes, over the 200 KB limit" >&2
  exit 1
fi
