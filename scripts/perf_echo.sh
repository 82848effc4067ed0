#!/usr/bin/env bash
# scripts/perf_echo.sh - the TCP echo benchmark (../shared/peer-bench/echo):
# bench/amb-echo beside the C epoll baseline, Go net and Erlang gen_tcp
# (passive and {active, 100}) in one run, then the 1-connection cases again
# under other bounds of the idle spin (amb_config.spin_us, through
# AMB_ECHO_SPIN_US), and regenerates the echo parts of docs/perf.md (the
# table, the targets, the spin table, the run information).
#
#   scripts/perf_echo.sh [AMB_ECHO]     default: build-bench/bench/amb-echo
#
# Environment:
#   RUNS=3           runs per case (each a fresh server on a fresh port)
#   FILTER=re        only cases whose label matches (run_echo.sh's argument)
#   SPINS="off 50"   spin bounds (us, or off) of the extra 1-connection runs;
#                    empty: none
#   PERF_DIR=d       where raw logs are kept (default: build-bench/perf)
#   PEER_BENCH=d     the peer-bench sources (default: ../shared/peer-bench)
#   DOC=f            the document to update (default: docs/perf.md)
#
# Runs from a scratch copy (peer-bench is read-only; run_echo.sh writes
# results/ beside itself). Needs: gcc, go (golang-go), erlang, python3,
# /usr/bin/time, ss. On 2 vCPUs the whole matrix takes ~10 minutes: nothing
# else heavy should run meanwhile.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/build-bench/bench/amb-echo}")
src=${PEER_BENCH:-$root/../shared/peer-bench}
# A worktree one level deeper (worktrees/<name>) finds it one level up.
[ -d "$src" ] || [ -n "${PEER_BENCH:-}" ] || src=$root/../../shared/peer-bench
perf_dir=${PERF_DIR:-$root/build-bench/perf}
doc=${DOC:-$root/docs/perf.md}
RUNS=${RUNS:-3}
FILTER=${FILTER:-.}
SPINS=${SPINS-"off 50"}

[ -x "$bin" ] || { echo "perf_echo.sh: no server at $bin (make bench)" >&2; exit 1; }
[ -f "$src/echo/run_echo.sh" ] || { echo "perf_echo.sh: no peer-bench at $src" >&2; exit 1; }
command -v go > /dev/null || { echo "perf_echo.sh: needs go (apt-get install golang-go)" >&2; exit 1; }
mkdir -p "$perf_dir"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$src" "$scratch/"
cd "$scratch/peer-bench/echo"
mkdir -p ../results
: > ../results/raw.log

echo "perf_echo.sh: running in $scratch/peer-bench/echo (RUNS=$RUNS FILTER=$FILTER)"
AMB_ECHO="$bin" RUNS="$RUNS" ./run_echo.sh "$FILTER"

# The spin variants: a wrapper that execs the server (same pid, as the
# contract asks) with AMB_ECHO_SPIN_US set; their labels are renamed
# echo.c_spin<N>.* so that they sit beside the default ones.
for spin in $SPINS; do
    wrap="$scratch/amb-echo-spin-$spin"
    printf '#!/bin/sh\nAMB_ECHO_SPIN_US=%s exec %s "$@"\n' "$spin" "$bin" > "$wrap"
    chmod +x "$wrap"
    before=$(wc -l < ../results/raw.log)
    AMB_ECHO="$wrap" ONLY_C=1 RUNS="$RUNS" ./run_echo.sh 'echo\.c\.c1\.'
    tail -n +"$((before + 1))" ../results/raw.log | sed "s/label=echo\.c\./label=echo.c_spin$spin./" \
        > "$scratch/spin.log"
    head -n "$before" ../results/raw.log > "$scratch/base.log"
    cat "$scratch/base.log" "$scratch/spin.log" > ../results/raw.log
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
cp ../results/raw.log "$perf_dir/echo-$stamp.log"
cp ../results/versions_echo.txt "$perf_dir/versions_echo.txt"
python3 "$root/scripts/perf_echo.py" ../results/raw.log --versions ../results/versions_echo.txt \
    --out "$doc"
echo "perf_echo.sh: raw log kept as $perf_dir/echo-$stamp.log; $doc regenerated"
