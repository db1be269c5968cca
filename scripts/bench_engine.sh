#!/usr/bin/env bash
# Engine benchmarks: pants servers against tokio (current-thread runtime)
# servers, over loopback only, with a verifying load generator.
#
#   scripts/bench_engine.sh            # build (release) and run everything
#   REPS=3 DURATION=2 scripts/bench_engine.sh
#   ONLY="p64-raw c1000-raw" REPS=9 scripts/bench_engine.sh   # some scenarios
#   BASELINE=/path/to/old/bench_pants_server scripts/bench_engine.sh
#       # pants against an earlier build of pants (a refactor's cost) instead
#       # of tokio: the second column is that binary, labelled "base"
#   THREADS="1 2" ONLY="p64-lines p64-lines-t2" scripts/bench_engine.sh
#       # also with 2 workers: pants `Workers` (one engine per thread,
#       # SO_REUSEPORT) against tokio's multi-thread runtime with 2 workers;
#       # the scenario's name gets "-t2"
#
# Servers run pinned to core 0, the load generator to core 1 (taskset); a
# server with N > 1 threads runs on cores 0..N-1 (on a 2-core machine the
# load generator then shares a core with it). Each
# scenario runs REPS times, alternating which server goes first; the table
# gives medians and pants/tokio ratios of the medians. Server CPU per message
# is the server's utime+stime (/proc/PID/stat) over the measured interval,
# divided by the replies checked in it. Bounded: about 70 runs of
# WARMUP+DURATION seconds each (~5 minutes with the defaults) after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-5}
DURATION=${DURATION:-2.5}
WARMUP=${WARMUP:-0.5}
CONNS_MANY=${CONNS_MANY:-1000}
THREADS=${THREADS:-1}
OUT=${OUT:-$(mktemp -d /tmp/bench_engine.XXXXXX)}
mkdir -p "$OUT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

echo "building (release) ..."
cargo build --release --quiet --example bench_pants_server --example bench_tokio_server --example bench_loadgen
BIN=$CARGO_TARGET_DIR/release/examples
# The server the pants one is measured against.
OTHER=tokio
OTHER_BIN=$BIN/bench_tokio_server
if [ -n "${BASELINE:-}" ]; then
    OTHER=base
    OTHER_BIN=$BASELINE
    [ -x "$OTHER_BIN" ] || { echo "BASELINE=$BASELINE is not an executable" >&2; exit 2; }
fi

# Pinning: server on core 0, load generator on core 1.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
else
    echo "warning: taskset or a second core missing: running unpinned" >&2
    PIN_SERVER=()
    PIN_LOAD=()
fi

# 1000 connections need about 1000 descriptors in each process.
need=$((CONNS_MANY + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || true
    if [ "$(ulimit -n)" -lt "$need" ]; then
        CONNS_MANY=$(($(ulimit -n) - 64))
        echo "warning: ulimit -n is $(ulimit -n): scaling the many-connection scenario down to $CONNS_MANY" >&2
    fi
fi

# name proto conns inflight size
SCENARIOS=(
    "bulk-echo raw 4 4 65536"
    "p64-raw raw 64 16 64"
    "p64-lines lines 64 16 64"
    "p64-len len 64 16 64"
    "c$CONNS_MANY-raw raw $CONNS_MANY 1 64"
    "c$CONNS_MANY-lines lines $CONNS_MANY 1 64"
    "c$CONNS_MANY-len len $CONNS_MANY 1 64"
)

SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

# run_one SERVER PROTO CONNS INFLIGHT SIZE THREADS: prints the load generator's line.
run_one() {
    local server=$1 proto=$2 conns=$3 inflight=$4 size=$5 threads=$6 addr=
    local log=$OUT/server.out
    : >"$log"
    local bin=$BIN/bench_pants_server
    [ "$server" = pants ] || bin=$OTHER_BIN
    local pin=("${PIN_SERVER[@]}") extra=()
    if [ "$threads" -gt 1 ]; then
        extra=(--threads "$threads")
        [ ${#pin[@]} -gt 0 ] && pin=(taskset -c "0-$((threads > $(nproc) ? $(nproc) - 1 : threads - 1))")
    fi
    "${pin[@]}" "$bin" --proto "$proto" --addr 127.0.0.1:0 "${extra[@]}" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        echo "FAILED: $server server did not start: $(cat "$log")"
    else
        "${PIN_LOAD[@]}" "$BIN/bench_loadgen" --addr "$addr" --proto "$proto" --conns "$conns" \
            --inflight "$inflight" --size "$size" --warmup "$WARMUP" --duration "$DURATION" \
            --server-pid "$SERVER_PID" 2>&1 || echo "FAILED: load generator exit $?"
    fi
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    # Let the sockets of the last run leave TIME_WAIT pressure behind.
    sleep 0.2
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "reps=$REPS duration=${DURATION}s warmup=${WARMUP}s; raw lines in $RESULTS"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews absolute figures)"
failed=0
for scenario in "${SCENARIOS[@]}"; do
  for threads in $THREADS; do
    read -r name proto conns inflight size <<<"$scenario"
    [ "$threads" -gt 1 ] && name=$name-t$threads
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        continue
    fi
    for rep in $(seq "$REPS"); do
        if [ $((rep % 2)) -eq 1 ]; then order="pants $OTHER"; else order="$OTHER pants"; fi
        for server in $order; do
            line=$(run_one "$server" "$proto" "$conns" "$inflight" "$size" "$threads")
            printf '%-12s %-5s rep %d: %s\n' "$name" "$server" "$rep" "$line"
            case $line in
                *FAILED*) failed=1 ;;
                *) printf '%s\t%s\t%d\t%s\n' "$name" "$server" "$rep" "$line" >>"$RESULTS" ;;
            esac
        done
    done
  done
done

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Medians of $REPS runs each (ratio = pants / $OTHER; for CPU per message lower is better):"
awk -F'\t' -v other="$OTHER" '
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return 0
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    name = $1; server = $2
    if (!(name in seen)) { seen[name] = 1; order[++count] = name }
    n = split($4, kv, " ")
    for (i = 1; i <= n; i++) {
        split(kv[i], p, "=")
        if (p[1] == "msgs_per_sec") rate[name, server] = rate[name, server] " " p[2]
        if (p[1] == "mb_per_sec") mb[name, server] = mb[name, server] " " p[2]
        if (p[1] == "server_cpu_us_per_msg") cpu[name, server] = cpu[name, server] " " p[2]
        if (p[1] == "server_cpu_util") util[name, server] = util[name, server] " " p[2]
    }
}
END {
    printf "%-12s %12s %12s %7s %10s %10s %7s %8s %8s\n", "scenario", "pants", other, "ratio", "pants", other, "ratio", "pants", other
    printf "%-12s %12s %12s %7s %10s %10s %7s %8s %8s\n", "", "msgs/s", "msgs/s", "", "cpu us/msg", "cpu us/msg", "", "cpu use", "cpu use"
    for (k = 1; k <= count; k++) {
        name = order[k]
        rp = median(rate[name, "pants"]); rt = median(rate[name, other])
        cp = median(cpu[name, "pants"]); ct = median(cpu[name, other])
        up = median(util[name, "pants"]); ut = median(util[name, other])
        printf "%-12s %12.0f %12.0f %7.2f %10.3f %10.3f %7.2f %8.2f %8.2f", name, rp, rt, (rt > 0 ? rp / rt : 0), cp, ct, (ct > 0 ? cp / ct : 0), up, ut
        if (name ~ /^bulk/) printf "   MB/s: pants %.1f %s %.1f ratio %.2f", median(mb[name, "pants"]), other, median(mb[name, other]), median(mb[name, "pants"]) / median(mb[name, other])
        printf "\n"
    }
}' "$RESULTS"
exit $failed
