#!/usr/bin/env bash
# The `kv` example with one worker against kv with several (`--threads`),
# side by side in one run, with redis-benchmark as the load.
#
#   scripts/bench_kv_threads.sh                       # SET, GET at -P 1 and -P 16, 2 rounds
#   CONFIGS="1:0 2:0,1 2:0" ROUNDS=3 scripts/bench_kv_threads.sh
#   KEYS_MODES="fixed spread" REQUESTS=200000 CLIENTS=50 scripts/bench_kv_threads.sh
#
# CONFIGS lists the servers, each THREADS:CORES (taskset's list), or
# THREADS:CORES:BINARY for another kv binary (an older build, to compare): the
# default `1:0 2:0,1` is kv with one worker on core 0 and kv with two
# workers on cores 0 and 1; redis-benchmark runs on core 1 (LOAD_CORES),
# so with two cores one of the two workers shares its core with the load.
# KEYS_MODES: `fixed` is redis-benchmark's one key (key:__rand_int__, as
# bench_kv_redis.sh runs it), which one worker owns: the connections the
# kernel gave the other worker forward every request; `spread` is `-r
# 100000`, random keys, so every connection forwards about (N-1)/N of its
# requests.
#
# Prints, per test, the requests per second and the server's CPU time per
# request (user + system, from /proc) as medians over the rounds, the share
# of requests forwarded (kv's INFO counters), and with several workers each
# worker thread's CPU time per request it received and per job it ran for
# another worker. Bounded: ROUNDS x configs x key modes x pipelines x tests
# runs of REQUESTS requests (about 2 minutes with the defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
TESTS=${TESTS:-set,get}
PIPELINES=${PIPELINES:-1 16}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
CONFIGS=${CONFIGS:-1:0 2:0,1}
KEYS_MODES=${KEYS_MODES:-fixed spread}
LOAD_CORES=${LOAD_CORES:-1}
BASE_PORT=${BASE_PORT:-7393}
OUT=${OUT:-$(mktemp -d /tmp/bench_kv_threads.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark and redis-cli (apt-get install redis-tools)" >&2; exit 1; }
if [ -z "${KV:-}" ]; then
    echo "building kv (release) ..."
    cargo build --release --quiet --example kv
    KV=$CARGO_TARGET_DIR/release/examples/kv
fi
PIN=1
command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || { echo "warning: taskset or a second core missing: running unpinned" >&2; PIN=0; }
# Runs `command` on `cores`, in place of the (sub)shell: call it in the
# background or in a pipeline, so that `$!` is the command's own pid.
pin() { # cores command...
    local cores=$1
    shift
    if [ "$PIN" = 1 ]; then exec taskset -c "$cores" "$@"; else exec "$@"; fi
}

pids=()
ports=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

i=0
for config in $CONFIGS; do
    IFS=: read -r threads cores binary <<<"$config"
    # `--threads 1` is the default: left out, so that a kv from before the
    # option can be compared (THREADS:CORES:BINARY).
    flags=()
    [ "$threads" = 1 ] || flags=(--threads "$threads")
    port=$((BASE_PORT + i))
    pin "$cores" "${binary:-$KV}" --addr "127.0.0.1:$port" "${flags[@]}" >"$OUT/kv-$i.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
    i=$((i + 1))
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$port" ping >/dev/null
done

TICK=$(getconf CLK_TCK)
# "<thread name> <cpu ticks>" for every thread of a process.
thread_ticks() {
    for stat in /proc/"$1"/task/*/stat; do
        # The name is in parentheses and may hold spaces: split after it.
        sed -E 's/^[0-9]+ \((.*)\) (.*)$/\1\t\2/' "$stat" | awk -F'\t' '{ split($2, f, " "); print $1 "\t" f[12] + f[13] }'
    done
}
# kv's per-worker counters: "<worker> <commands> <forwarded> <jobs_in>".
worker_counters() {
    redis-cli -p "$1" info stats | tr -d '\r' | sed -nE \
        's/^pants_kv_worker([0-9]+):.*commands=([0-9]+).*forwarded=([0-9]+).*jobs_in=([0-9]+).*/\1\t\2\t\3\t\4/p'
}
run() { # port pipeline test keys
    local random=()
    [ "$4" = spread ] && random=(-r 100000)
    pin "$LOAD_CORES" timeout 300 redis-benchmark -p "$1" -n "$REQUESTS" -c "$CLIENTS" -P "$2" -t "$3" "${random[@]}" \
        --csv 2>/dev/null | awk -F, 'NR > 1 { gsub(/"/, ""); print tolower($1) "\t" $2 }'
}

results=$OUT/results.tsv
: >"$results"
configs=($CONFIGS)
for round in $(seq "$ROUNDS"); do
    for keys in $KEYS_MODES; do
        for pipeline in $PIPELINES; do
            for test in ${TESTS//,/ }; do
                order=$(seq 0 $((${#configs[@]} - 1)))
                ((round % 2 == 0)) && order=$(seq $((${#configs[@]} - 1)) -1 0)
                for c in $order; do
                    port=${ports[$c]} pid=${pids[$c]}
                    thread_ticks "$pid" >"$OUT/before"
                    worker_counters "$port" >"$OUT/counters-before"
                    out=$(run "$port" "$pipeline" "$test" "$keys")
                    thread_ticks "$pid" >"$OUT/after"
                    worker_counters "$port" >"$OUT/counters-after"
                    # One line: round, config, keys, pipeline, test, rps, then
                    # per-thread CPU ticks and per-worker counters (deltas).
                    python3 - "$OUT" "$round" "${configs[$c]}" "$keys" "$pipeline" "$TICK" "$REQUESTS" "$out" >>"$results" <<'EOF'
import json, sys
out, round_, config, keys, pipeline, tick, requests, bench = sys.argv[1:]
def table(name, width):
    # By name: threads of one name (the main thread and the signal
    # thread, both named after the binary) add up.
    rows = {}
    for line in open(f"{out}/{name}"):
        fields = line.rstrip("\n").split("\t")
        if len(fields) == width:
            values = [float(x) for x in fields[1:]]
            rows[fields[0]] = [a + b for a, b in zip(rows.get(fields[0], [0] * len(values)), values)]
    return rows
before, after = table("before", 2), table("after", 2)
cpu = {name: (after[name][0] - before.get(name, [0])[0]) / float(tick) for name in after}
cb, ca = table("counters-before", 4), table("counters-after", 4)
workers = {w: [a - b for a, b in zip(ca[w], cb.get(w, [0, 0, 0]))] for w in ca}
name, _, rps = bench.partition("\t")
print(json.dumps({"round": int(round_), "config": config, "keys": keys, "pipeline": int(pipeline), "test": name,
                  "rps": float(rps or 0), "requests": int(requests), "cpu": cpu, "workers": workers}))
EOF
                    tail -1 "$results" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["round"], r["config"], r["keys"], "-P", r["pipeline"], r["test"], round(r["rps"]), "rps", round(sum(r["cpu"].values()) / r["requests"] * 1e6, 2), "us/req")'
                done
            done
        done
    done
done

echo
echo "medians of $ROUNDS rounds (-n $REQUESTS -c $CLIENTS); cpu: the server's CPU per request (all its threads);"
echo "fwd: requests forwarded; per worker: share of the requests it received, of them forwarded, jobs it ran"
echo "for another worker (per request sent), and its thread's CPU per request it received"
python3 - "$results" <<'EOF'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["keys"], r["pipeline"], r["test"], r["config"])].append(r)
med = statistics.median
print(f"{'keys':<7}{'-P':>3} {'test':<5}{'threads:cores':>24}{'req/s':>10}{'cpu us/req':>11}{'fwd %':>7}   per worker")
one = {}
costs = []
for (keys, pipeline, test, config), rs in sorted(runs.items()):
    rps = med(r["rps"] for r in rs)
    cpu = med(sum(r["cpu"].values()) / r["requests"] * 1e6 for r in rs)
    line = f"{keys:<7}{pipeline:>3} {test:<5}{config:>24}{rps:>10.0f}{cpu:>11.2f}"
    if config.startswith("1:"):
        if config.count(":") == 1:
            one[(keys, pipeline, test)] = cpu
        print(line)
        continue
    def total(r, i):
        return sum(w[i] for w in r["workers"].values())
    fwd = med(total(r, 1) / max(1, total(r, 0)) for r in rs)
    parts = []
    for w in sorted(rs[0]["workers"], key=int):
        thread = f"pants-worker-{w}"
        got = med(r["workers"][w][0] / r["requests"] for r in rs)
        forwarded = med(r["workers"][w][1] / max(1, r["workers"][w][0]) for r in rs)
        jobs_in = med(r["workers"][w][2] / r["requests"] for r in rs)
        per_req = med(r["cpu"].get(thread, 0) * 1e6 / max(1, r["workers"][w][0]) for r in rs)
        parts.append(f"w{w} {got:.0%} recv, {forwarded:.0%} fwd, {jobs_in:.0%} jobs in, {per_req:.2f} us")
    print(line + f"{fwd * 100:>7.1f}   " + "; ".join(parts))
    # One key (fixed): one worker owns it, the other only forwards. The
    # forwarder's CPU per request is the sending side's cost; the owner's
    # CPU, less its local requests at the one-worker cost, per job it ran,
    # the owner's side.
    base = one.get((keys, pipeline, test))
    if keys == "fixed" and base and config.startswith("2:") and config.count(":") == 1:
        send, serve = [], []
        for r in rs:
            ws = sorted(r["workers"].items(), key=lambda kv: kv[1][2])
            (fw, f), (ow, o) = ws[0], ws[-1]
            if f[0] == 0 or o[2] == 0 or f[1] < 0.99 * f[0]:
                continue
            send.append(r["cpu"].get(f"pants-worker-{fw}", 0) * 1e6 / f[0])
            serve.append((r["cpu"].get(f"pants-worker-{ow}", 0) * 1e6 - (o[0] - o[1]) * base) / o[2])
        if send:
            costs.append(f"{keys} -P {pipeline} {test} on {config}: local {base:.2f} us (one worker); forwarded "
                         f"{med(send):.2f} (sender) + {med(serve):.2f} (owner) = {med(send) + med(serve):.2f} us")
if costs:
    print("\nCPU per request, local vs forwarded (one key: the connections of the worker that does not own it forward all):")
    print("\n".join("  " + c for c in costs))
EOF
echo "(raw results: $results)"
