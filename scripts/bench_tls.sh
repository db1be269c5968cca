#!/usr/bin/env bash
# TLS benchmark: pants vs tokio-rustls, same work, same run.
#
# Two TLS echo servers (examples/bench_tls_pants.rs on a pants Engine,
# examples/bench_tls_tokio.rs on a tokio current-thread runtime with
# tokio-rustls), both rustls 0.23 with the ring provider, the same
# certificate (ECDSA P-256, made fresh for the run) and the same rustls
# settings, driven by one load generator (examples/bench_tls_load.rs):
#
#   tp13 / tp12  echo throughput, 8 connections writing 16 KiB chunks, TLS 1.3 / 1.2
#   hs13 / hs12  full handshakes (no resumption) per second, 8 concurrent loops of
#                connect + handshake + 1 byte each way + close_notify, TLS 1.3 / 1.2
#
# Each figure: the median of RUNS runs (default 3), pants and tokio runs
# alternating (their order swapped every run). Besides the rate, the
# server's CPU time per unit of work is reported (ns per KiB echoed, us per
# handshake): on a small shared machine the rate can be capped by the load
# generator or by neighbours, the CPU cost per unit much less so.
#
# Server and load generator are pinned to different cores with taskset
# when there are at least two. Loopback only. Measuring takes about
# 1.5 minutes; it stops early (with what it has) if it passes 280 s.
#
#   scripts/bench_tls.sh                    # build (release) and run
#   RUNS=5 DURATION=3 scripts/bench_tls.sh  # longer
#   WORKLOADS="tp13 hs13" scripts/bench_tls.sh
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-2}
WARMUP=${WARMUP:-0.5}
WORKLOADS=${WORKLOADS:-"tp13 tp12 hs13 hs12"}
BUDGET=${BUDGET:-280}

echo "building (release)..." >&2
cargo build --release --quiet --example bench_tls_pants --example bench_tls_tokio --example bench_tls_load
BIN=${CARGO_TARGET_DIR:-target}/release/examples
SECONDS=0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_tls.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/bench_tls_load" --gen-certs "$WORK"

SERVER_PIN=()
LOAD_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
    PINNING="server on CPU 0, load on CPU 1 (taskset)"
else
    PINNING="not pinned (no taskset or fewer than 2 CPUs)"
fi

args_for() {
    case "$1" in
        tp13) echo "--mode throughput --conns 8 --size 16384" ;;
        tp12) echo "--mode throughput --conns 8 --size 16384 --tls12" ;;
        hs13) echo "--mode handshake --conns 8" ;;
        hs12) echo "--mode handshake --conns 8 --tls12" ;;
        *) echo "unknown workload $1" >&2; exit 2 ;;
    esac
}

# Starts a server, runs the load against it once, stops it. Prints the
# load generator's line.
run_one() {
    local server=$1 workload=$2
    "${SERVER_PIN[@]}" "$BIN/bench_tls_$server" --addr 127.0.0.1:0 --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
        >"$WORK/server.out" 2>&1 &
    SERVER_PID=$!
    local addr="" i
    for i in $(seq 1 100); do
        addr=$(sed -n 's/^listening on //p' "$WORK/server.out")
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        echo "bench_tls_$server did not start:" >&2
        cat "$WORK/server.out" >&2
        exit 1
    fi
    # shellcheck disable=SC2046
    "${LOAD_PIN[@]}" timeout 60 "$BIN/bench_tls_load" --addr "$addr" $(args_for "$workload") \
        --warmup "$WARMUP" --duration "$DURATION" --server-pid "$SERVER_PID"
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

field() { # field NAME LINE
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"
}

median() { # numbers on stdin
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "na"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $PINNING"
echo "runs: $RUNS x ${DURATION}s (+${WARMUP}s warm-up) per server and workload, alternating"
echo

for workload in $WORKLOADS; do
    for run in $(seq 1 "$RUNS"); do
        if [ "$SECONDS" -gt "$BUDGET" ]; then
            echo "time budget ($BUDGET s) spent: stopping early" >&2
            break 2
        fi
        if [ $((run % 2)) -eq 1 ]; then order="pants tokio"; else order="tokio pants"; fi
        for server in $order; do
            line=$(run_one "$server" "$workload")
            echo "$workload run $run $server: $line"
            echo "$line" >>"$WORK/$workload.$server"
        done
    done
done

echo
printf '%-6s %-13s %12s %12s %7s   %-16s %10s %10s %7s\n' \
    workload metric pants tokio ratio "server CPU" pants tokio ratio
for workload in $WORKLOADS; do
    [ -f "$WORK/$workload.pants" ] && [ -f "$WORK/$workload.tokio" ] || continue
    case "$workload" in
        tp*) rate=mib_per_s cost=server_cpu_ns_per_kib rate_name="MiB/s" cost_name="ns/KiB" ;;
        hs*) rate=handshakes_per_s cost=server_cpu_us_per_handshake rate_name="handshakes/s" cost_name="us/handshake" ;;
    esac
    declare -A med=()
    for server in pants tokio; do
        med[$server.rate]=$(while read -r l; do field "$rate" "$l"; done <"$WORK/$workload.$server" | median)
        med[$server.cost]=$(while read -r l; do field "$cost" "$l"; done <"$WORK/$workload.$server" | median)
    done
    # Rate ratio: pants / tokio (above 1: pants faster). CPU ratio: tokio's
    # cost / pants' cost (above 1: pants cheaper).
    rate_ratio=$(awk -v p="${med[pants.rate]}" -v t="${med[tokio.rate]}" 'BEGIN { if (t > 0) printf "%.2fx", p / t; else print "na" }')
    cost_ratio=$(awk -v p="${med[pants.cost]}" -v t="${med[tokio.cost]}" 'BEGIN { if (p > 0) printf "%.2fx", t / p; else print "na" }')
    printf '%-6s %-13s %12s %12s %7s   %-16s %10s %10s %7s\n' "$workload" "$rate_name" \
        "${med[pants.rate]}" "${med[tokio.rate]}" "$rate_ratio" "$cost_name" "${med[pants.cost]}" "${med[tokio.cost]}" "$cost_ratio"
    unset med
done
echo
echo "ratio: pants/tokio for rates (>1: pants faster); tokio/pants for server CPU per unit (>1: pants cheaper)"
echo "measured in ${SECONDS}s (build excluded)"
