#!/usr/bin/env bash
# Instructions per reply of bench_pants_server builds, counted by callgrind:
# a refactor's cost on the engine's hot path, in a figure that does not move
# with the load on a shared machine (unlike msgs/s and CPU time, which swing
# by ±10-15 % here between runs of the same binary).
#
#   scripts/engine_instructions.sh OLD_BIN NEW_BIN [MORE_BINS...]
#   PROTOS="raw lines len" REPS=2 DURATION=4 scripts/engine_instructions.sh ...
#
# Each binary serves 64 pipelining connections (16 requests in flight, 64
# bytes each) from bench_loadgen (release build in $CARGO_TARGET_DIR, default
# target) for DURATION seconds; the figure is the server's user-space
# instructions (callgrind's Ir, start-up included, which is small beside the
# millions of replies) divided by the replies the load generator checked.
# Kernel work (the system calls) is not counted: it is the same for every
# build that makes the same calls. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOS=${PROTOS:-"raw lines len"}
REPS=${REPS:-1}
DURATION=${DURATION:-4}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 BIN..." >&2; exit 2; }
LOADGEN=${CARGO_TARGET_DIR:-target}/release/examples/bench_loadgen
[ -x "$LOADGEN" ] || cargo build --release --quiet --example bench_loadgen
PIN_SERVER=() PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER=(taskset -c 0) PIN_LOAD=(taskset -c 1); fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for proto in $PROTOS; do
    for rep in $(seq "$REPS"); do
        for bin in "$@"; do
            "${PIN_SERVER[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" \
                --proto "$proto" --addr 127.0.0.1:0 >"$log" 2>&1 &
            pid=$!
            addr=
            for _ in $(seq 300); do
                addr=$(sed -n 's/^listening on //p' "$log")
                [ -n "$addr" ] && break
                sleep 0.1
            done
            [ -n "$addr" ] || { echo "$bin did not start: $(cat "$log")" >&2; kill "$pid"; exit 1; }
            line=$("${PIN_LOAD[@]}" "$LOADGEN" --addr "$addr" --proto "$proto" --conns 64 --inflight 16 \
                --size 64 --warmup 0.5 --duration "$DURATION" --server-pid "$pid" 2>&1)
            kill -TERM "$pid"
            wait "$pid" 2>/dev/null || true
            ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
            checked=$(sed -n 's/.*checked=\([0-9]*\).*/\1/p' <<<"$line")
            awk -v b="$bin" -v p="$proto" -v r="$rep" -v ir="$ir" -v n="$checked" \
                'BEGIN { printf "%-8s rep %d  %-50s %12d instructions / %9d replies = %8.2f per reply\n", p, r, b, ir, n, ir / n }'
        done
    done
done
