#!/usr/bin/env bash
# scripts/perf.sh - runs the peer benchmarks (../shared/peer-bench) with our
# amb-bench beside Erlang/OTP, Go and CAF (and our own cases with an Erlang
# twin, bench/*.erl), then regenerates the generated
# parts of docs/perf.md (the table, the targets, the run information; the
# hand-written text around them stays).
#
#   scripts/perf.sh [AMB_BENCH]      default AMB_BENCH: build-bench/bench/amb-bench
#
# Environment:
#   RUNS=3         runs per case (fresh OS process each)
#   ONLY_C=1       run only our cases; the peers' numbers come from the last
#                  full run (PEER_LOG). Ratios then compare two runs of one
#                  session on one machine, not one run: say so when quoting.
#   PEER_LOG=f     the peers' raw.log to merge with ONLY_C=1
#                  (default: $PERF_DIR/peers.log, kept by every full run)
#   PERF_DIR=d     where raw logs are kept (default: build-bench/perf)
#   PEER_BENCH=d   the peer-bench sources (default: ../shared/peer-bench)
#   FILTER=re      only cases whose label matches (run_all.sh's argument)
#   DOC=f          the document to update (default: docs/perf.md)
#
# The suite runs from a scratch copy in /tmp, as peer-bench's README asks
# (run_all.sh writes results/ beside itself). Needs: erlang-nox golang-go
# libcaf-dev g++ time python3 (run_all.sh builds the peers even with ONLY_C).
# On 2 cores a full run takes ~10-15 minutes: nothing else heavy should run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/build-bench/bench/amb-bench}")
src=${PEER_BENCH:-$root/../shared/peer-bench}
perf_dir=${PERF_DIR:-$root/build-bench/perf}
doc=${DOC:-$root/docs/perf.md}
RUNS=${RUNS:-3}
ONLY_C=${ONLY_C:-0}
FILTER=${FILTER:-.}

[ -x "$bin" ] || { echo "perf.sh: no benchmark binary at $bin (make bench)" >&2; exit 1; }
[ -f "$src/run_all.sh" ] || { echo "perf.sh: no peer-bench at $src" >&2; exit 1; }
mkdir -p "$perf_dir"
peer_log=${PEER_LOG:-$perf_dir/peers.log}
if [ "$ONLY_C" = 1 ] && [ ! -f "$peer_log" ]; then
    echo "perf.sh: ONLY_C=1 needs the peers' results ($peer_log): run once without it" >&2
    exit 1
fi

scratch=$(mktemp -d) # under $TMPDIR or /tmp
cp -r "$src" "$scratch/"
cd "$scratch/peer-bench"

# Our extra cases, each after the case it varies: 1M handler processes
# (c.spawn_handler), the ring with handler nodes (c.ring.handler) and the
# call to a server with a term-map state (c.call_state).
add_case() { # after-label new-label args
    sed -i "s/^\( *\)\"c\.$1|\\\$A \(.*\)\"\$/&\n\1\"c.$2|\$A $3\"/" run_all.sh
    grep -q "\"c\.$2|" run_all.sh || {
        echo "perf.sh: run_all.sh changed shape; cannot add c.$2" >&2
        exit 1
    }
}
add_case spawn spawn_handler "spawn_handler 1000000 3"
add_case ring ring.handler "ring 10000 100 1"
# A gen_server whose state is a term map (issue 14), beside the plain call.
add_case call.c1 call_state "call_state 100000 10000000"

# Cases the peers do not have, with an Erlang twin of ours that runs in the
# same batch: maps (bench/maps_bench.erl beside `amb-bench maps`), after the
# timers. The twin is built next to peer-bench's bench.erl.
add_case timers maps "maps 1000000"
mkdir -p erlang/ebin
erlc -o erlang/ebin "$root/bench/maps_bench.erl"
sed -i 's/^\( *\)"erl\.timers|.*"$/&\n\1"erl.maps|erl -noshell -pa erlang\/ebin -run maps_bench main 1000000"/' run_all.sh
grep -q '"erl\.maps|' run_all.sh || {
    echo "perf.sh: run_all.sh changed shape; cannot add erl.maps" >&2
    exit 1
}

echo "perf.sh: running in $scratch/peer-bench (RUNS=$RUNS ONLY_C=$ONLY_C FILTER=$FILTER)"
AMB_BENCH="$bin" RUNS="$RUNS" ONLY_C="$ONLY_C" ./run_all.sh "$FILTER"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
cp results/raw.log "$perf_dir/raw-$stamp.log"
cp results/versions.txt "$perf_dir/versions.txt"
logs=("results/raw.log")
if [ "$ONLY_C" = 1 ]; then
    logs=("$peer_log" "results/raw.log")
elif [ "$FILTER" = . ]; then
    # A full run: its peers' numbers are the ones ONLY_C runs compare with.
    grep -v '^$' results/raw.log > "$peer_log.tmp" && mv "$peer_log.tmp" "$peer_log"
fi
python3 "$root/scripts/perf_table.py" "${logs[@]}" --versions results/versions.txt --out "$doc"
echo "perf.sh: raw log kept as $perf_dir/raw-$stamp.log; $doc regenerated"
rm -rf "$scratch"
