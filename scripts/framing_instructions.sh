#!/usr/bin/env bash
# Instructions per 4 MiB input for every variant of `cargo bench --bench
# framing`, counted by callgrind: a figure that does not move with the load
# on a shared machine, unlike time. Each variant runs RUNS times on its
# input (FRAMING_RUN=group/variant:RUNS), minus a run with 0 (the setup),
# divided by RUNS. Prints "group/variant instructions ratio", the ratio being
# the group's hand-written baseline over the variant (above 1: fewer
# instructions than the hand loop).
#
# Instructions are not time (a SIMD search does 32 bytes per instruction, a
# copy is one instruction per chunk), so read these beside the criterion
# figures, not instead of them.
#
#   scripts/framing_instructions.sh            # every variant
#   ONLY='lines_crlf/' scripts/framing_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
ONLY=${ONLY:-}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }

bin=$(cargo bench --bench framing --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "bench binary not found" >&2; exit 1; }

count() { # instructions of one FRAMING_RUN
    FRAMING_RUN="$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

declare -A per_input
names=$(FRAMING_RUN=list "$bin" | grep -e "$ONLY")
for name in $names; do
    setup=$(count "$name:0")
    total=$(count "$name:$RUNS")
    per_input[$name]=$(( (total - setup) / RUNS ))
done
for name in $names; do
    group=${name%%/*}
    case $group in
        lines_*) base=$group/memchr_buffered ;;
        *) base=$group/hand_loop ;;
    esac
    if [ -n "${per_input[$base]:-}" ]; then
        ratio=$(python3 -c "print(f'{${per_input[$base]} / ${per_input[$name]}:.2f}x')")
    else
        ratio=-
    fi
    printf '%s\t%s\t%s\n' "$name" "${per_input[$name]}" "$ratio"
done
