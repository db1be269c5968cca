#!/usr/bin/env bash
# The `kv` example against redis-server, side by side in one run, with
# redis-benchmark as the load.
#
#   scripts/bench_kv_redis.sh                  # SET and GET at -P 1 and -P 16, 2 rounds
#   ROUNDS=3 TESTS=set,get,incr PIPELINES="1 16 64" scripts/bench_kv_redis.sh
#   TESTS=lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset scripts/bench_kv_redis.sh
#   REQUESTS=200000 CLIENTS=50 scripts/bench_kv_redis.sh
#   KV_THREADS=2 scripts/bench_kv_redis.sh     # kv --threads 2 (on cores 0 and 1)
#
# Installs redis-server (Debian's package, as CI installs redis-tools) if it
# is missing. Both servers run pinned to core 0, redis-benchmark to core 1
# (taskset); kv with KV_THREADS workers (default 1) runs on cores 0 to
# KV_THREADS - 1 instead, so on two cores its second worker shares core 1
# with redis-benchmark (scripts/bench_kv_threads.sh compares kv's thread
# counts). Each round runs every test against kv then redis, alternating
# which goes first. Prints requests per second and the server's CPU time per
# request (user + system, from /proc), with the ratios kv / redis of the
# medians over the rounds (for CPU, below 1: kv uses less). Bounded: ROUNDS
# x tests x pipelines x 2 runs of REQUESTS requests each (about 2 minutes
# with the defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
TESTS=${TESTS:-set,get}
PIPELINES=${PIPELINES:-1 16}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
KV_THREADS=${KV_THREADS:-1}
KV_PORT=${KV_PORT:-7391}
REDIS_PORT=${REDIS_PORT:-7392}
OUT=${OUT:-$(mktemp -d /tmp/bench_kv_redis.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "installing redis-server and redis-tools ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server redis-tools >/dev/null
fi
redis-server --version

echo "building kv (release) ..."
cargo build --release --quiet --example kv
KV=$CARGO_TARGET_DIR/release/examples/kv

if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
    last=$((KV_THREADS < $(nproc) ? KV_THREADS - 1 : $(nproc) - 1))
    PIN_KV=(taskset -c "0-$last")
else
    echo "warning: taskset or a second core missing: running unpinned" >&2
    PIN_SERVER=()
    PIN_LOAD=()
    PIN_KV=()
fi
KV_FLAGS=()
[ "$KV_THREADS" = 1 ] || KV_FLAGS=(--threads "$KV_THREADS")

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

"${PIN_KV[@]}" "$KV" --addr "127.0.0.1:$KV_PORT" "${KV_FLAGS[@]}" >"$OUT/kv.log" 2>&1 &
pids+=($!)
"${PIN_SERVER[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no >"$OUT/redis.log" 2>&1 &
pids+=($!)
for port in "$KV_PORT" "$REDIS_PORT"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$port" ping >/dev/null
done

# One redis-benchmark run of one test: prints "<test>\t<requests per second>"
# (test names hold spaces: "lrange_100 (first 100 elements)").
run() { # port pipeline test
    "${PIN_LOAD[@]}" timeout 300 redis-benchmark -p "$1" -n "$REQUESTS" -c "$CLIENTS" -P "$2" -t "$3" \
        --csv 2>/dev/null | awk -F, 'NR > 1 { gsub(/"/, ""); print tolower($1) "\t" $2 }'
}

# CPU time (user + system, clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
KV_PID=${pids[0]}
REDIS_PID=${pids[1]}

results=$OUT/results.tsv
: >"$results"
for round in $(seq "$ROUNDS"); do
    for pipeline in $PIPELINES; do
        for test in ${TESTS//,/ }; do
            order=(kv redis)
            ((round % 2 == 0)) && order=(redis kv)
            for server in "${order[@]}"; do
                port=$KV_PORT pid=$KV_PID
                [ "$server" = redis ] && port=$REDIS_PORT pid=$REDIS_PID
                before=$(cpu_ticks "$pid")
                out=$(run "$port" "$pipeline" "$test")
                after=$(cpu_ticks "$pid")
                # Server CPU per request, microseconds.
                cpu=$(python3 -c "print(f'{($after - $before) / $TICK / $REQUESTS * 1e6:.3f}')")
                printf '%s\n' "$out" | while IFS=$'\t' read -r name rps; do
                    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$pipeline" "$name" "$server" "$rps" "$cpu" | tee -a "$results"
                done
            done
        done
    done
done

echo
echo "requests/s, medians of $ROUNDS rounds (-n $REQUESTS -c $CLIENTS, kv --threads $KV_THREADS); ratio = kv / redis"
python3 - "$results" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
cpus = collections.defaultdict(list)
for line in open(sys.argv[1]):
    _, pipeline, test, server, rps, cpu = line.rstrip("\n").split("\t")
    runs[(int(pipeline), test, server)].append(float(rps))
    cpus[(int(pipeline), test, server)].append(float(cpu))
print(f"{'test':<34}{'-P':>4}{'kv':>12}{'redis':>12}{'ratio':>8}   {'cpu us/req kv':>14}{'redis':>8}{'ratio':>7}   per round")
for pipeline, test in sorted({(p, t) for p, t, _ in runs}):
    kv, redis = runs[(pipeline, test, "kv")], runs[(pipeline, test, "redis")]
    if not kv or not redis:
        continue
    per_round = " ".join(f"{k / r:.2f}" for k, r in zip(kv, redis))
    ratio = statistics.median(kv) / statistics.median(redis)
    kv_cpu, redis_cpu = statistics.median(cpus[(pipeline, test, "kv")]), statistics.median(cpus[(pipeline, test, "redis")])
    cpu_ratio = kv_cpu / redis_cpu if redis_cpu else float("nan")
    print(f"{test:<34}{pipeline:>4}{statistics.median(kv):>12.0f}{statistics.median(redis):>12.0f}{ratio:>8.2f}"
          f"   {kv_cpu:>14.2f}{redis_cpu:>8.2f}{cpu_ratio:>7.2f}   {per_round}")
EOF
