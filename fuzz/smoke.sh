#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 20):
#
#     fuzz/smoke.sh [SECONDS]
#
# Exits non-zero if any target found a crash (its input is saved under
# fuzz/artifacts/<target>/). Works on stable Rust: cargo-fuzz needs nightly
# flags, which RUSTC_BOOTSTRAP=1 unlocks.
set -euo pipefail

secs="${1:-20}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build
failed=()
for target in $(cargo fuzz list); do
    echo "=== $target: ${secs}s"
    if ! cargo fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "crashes in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "all fuzz targets ran ${secs}s without a crash"
