#!/usr/bin/env bash
# The tokio reader (issue 12): the same tokio server (current-thread
# runtime, examples/bench_tokio_server.rs) with pants' tokio reader and
# writer (`--framing pants`) against tokio-util `Framed` with `LinesCodec` /
# `LengthDelimitedCodec` (`--framing tokio-util`), over loopback, with the
# verifying load generator of scripts/bench_engine.sh.
#
#   scripts/bench_tokio_reader.sh                 # build (release) and run
#   REPS=5 DURATION=2 scripts/bench_tokio_reader.sh
#   ONLY="p64-lines" scripts/bench_tokio_reader.sh
#
# Server pinned to core 0, load generator to core 1 (taskset). Each scenario
# runs REPS times, alternating which framing goes first; the table gives
# medians and pants/tokio-util ratios of the medians (msgs/s: higher is
# better; server CPU per message, utime+stime from /proc over the measured
# interval divided by the replies checked: lower is better). Bounded: 4
# scenarios x REPS x 2 runs of WARMUP+DURATION seconds (~1 minute with the
# defaults) after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
DURATION=${DURATION:-2}
WARMUP=${WARMUP:-0.5}
OUT=${OUT:-$(mktemp -d /tmp/bench_tokio_reader.XXXXXX)}
mkdir -p "$OUT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

echo "building (release, --features tokio) ..."
cargo build --release --quiet --features tokio --example bench_tokio_server --example bench_loadgen
BIN=$CARGO_TARGET_DIR/release/examples

if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
else
    echo "warning: taskset or a second core missing: running unpinned" >&2
    PIN_SERVER=()
    PIN_LOAD=()
fi

# name proto conns inflight size
SCENARIOS=(
    "p64-lines lines 64 16 64"
    "p64-len len 64 16 64"
    "c200-lines lines 200 1 64"
    "c200-len len 200 1 64"
)

SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

# run_one FRAMING PROTO CONNS INFLIGHT SIZE: prints the load generator's line.
run_one() {
    local framing=$1 proto=$2 conns=$3 inflight=$4 size=$5 addr=
    local log=$OUT/server.out
    : >"$log"
    "${PIN_SERVER[@]}" "$BIN/bench_tokio_server" --proto "$proto" --framing "$framing" --addr 127.0.0.1:0 >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        echo "FAILED: $framing server did not start: $(cat "$log")"
    else
        timeout 60 "${PIN_LOAD[@]}" "$BIN/bench_loadgen" --addr "$addr" --proto "$proto" --conns "$conns" \
            --inflight "$inflight" --size "$size" --warmup "$WARMUP" --duration "$DURATION" \
            --server-pid "$SERVER_PID" 2>&1 || echo "FAILED: load generator exit $?"
    fi
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    sleep 0.2
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "reps=$REPS duration=${DURATION}s warmup=${WARMUP}s; raw lines in $RESULTS"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews absolute figures)"
failed=0
for scenario in "${SCENARIOS[@]}"; do
    read -r name proto conns inflight size <<<"$scenario"
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        continue
    fi
    for rep in $(seq "$REPS"); do
        if [ $((rep % 2)) -eq 1 ]; then order="pants tokio-util"; else order="tokio-util pants"; fi
        for framing in $order; do
            line=$(run_one "$framing" "$proto" "$conns" "$inflight" "$size")
            printf '%-11s %-10s rep %d: %s\n' "$name" "$framing" "$rep" "$line"
            case $line in
                *FAILED*) failed=1 ;;
                *) printf '%s\t%s\t%d\t%s\n' "$name" "$framing" "$rep" "$line" >>"$RESULTS" ;;
            esac
        done
    done
done

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Medians of $REPS runs each (ratio = pants / tokio-util; for CPU per message lower is better):"
awk -F'\t' '
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return 0
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    name = $1; framing = $2
    if (!(name in seen)) { seen[name] = 1; order[++count] = name }
    n = split($4, kv, " ")
    for (i = 1; i <= n; i++) {
        split(kv[i], p, "=")
        if (p[1] == "msgs_per_sec") rate[name, framing] = rate[name, framing] " " p[2]
        if (p[1] == "server_cpu_us_per_msg") cpu[name, framing] = cpu[name, framing] " " p[2]
    }
}
END {
    printf "%-11s %12s %12s %7s %10s %10s %7s\n", "scenario", "pants", "tokio-util", "ratio", "pants", "tokio-util", "ratio"
    printf "%-11s %12s %12s %7s %10s %10s %7s\n", "", "msgs/s", "msgs/s", "", "cpu us/msg", "cpu us/msg", ""
    for (k = 1; k <= count; k++) {
        name = order[k]
        rp = median(rate[name, "pants"]); rt = median(rate[name, "tokio-util"])
        cp = median(cpu[name, "pants"]); ct = median(cpu[name, "tokio-util"])
        printf "%-11s %12.0f %12.0f %7.2f %10.3f %10.3f %7.2f\n", name, rp, rt, (rt > 0 ? rp / rt : 0), cp, ct, (ct > 0 ? cp / ct : 0)
    }
}' "$RESULTS"
exit $failed
