#!/bin/sh
# dist_guide.sh BUILD_DIR SOURCE_DIR - docs/distribution.md as a test: its C
# excerpts are in examples/cluster.c (every line), and its session runs as
# written: the boss node (which serves the embedded EPMD), two worker nodes
# and an erl shell; the shell's calls give the answers the guide shows; the
# worker node the children run on is killed and the supervisor moves them.
# A private EPMD port and cookie; every process stopped by pid; every wait
# has a deadline. Exit 77 (skipped) when erl is not installed.
set -eu

build_dir=${1:?usage: dist_guide.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: dist_guide.sh BUILD_DIR SOURCE_DIR}
guide="$source_dir/docs/distribution.md"
example="$source_dir/examples/cluster.c"
cluster="$build_dir/examples/cluster"

# 1. Every line of every ```c block of the guide is a line of the example.
awk '/^```c$/ {c=1; next} /^```/ {c=0} c && NF' "$guide" | while IFS= read -r line; do
    if ! grep -qxF -- "$line" "$example"; then
        echo "FAIL guide line not in examples/cluster.c: $line"
        exit 1
    fi
done
echo "PASS the guide's C excerpts are examples/cluster.c's"

if ! command -v erl >/dev/null 2>&1; then
    echo "dist_guide: erl not installed; the session part skipped"
    exit 77
fi

tmp=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A random port below Linux's ephemeral range (32768-60999 by default):
# the suite's client sockets hold thousands of ports there (EADDRINUSE).
port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000))
export ERL_EPMD_PORT=$port
cookie=demo$$
boss=boss$$@localhost wa=wa$$@localhost wb=wb$$@localhost shell=shell$$@localhost

# Waits (20 s at most) for a line starting with $2 in file $1.
wait_line() {
    deadline=$(($(date +%s) + 20))
    until grep -q "^$2" "$1"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "FAIL no line '$2' in $1:" >&2
            cat "$1" >&2
            exit 1
        fi
        sleep 0.1
    done
}

: >"$tmp/boss" ; : >"$tmp/wa" ; : >"$tmp/wb"
"$cluster" boss "$boss" "$wa" "$wb" --cookie "$cookie" --epmd "$port" >"$tmp/boss" 2>&1 &
pids="$pids $!"
wait_line "$tmp/boss" NODE
"$cluster" worker "$wa" --cookie "$cookie" --epmd "$port" >"$tmp/wa" 2>&1 &
wa_pid=$!
pids="$pids $wa_pid"
"$cluster" worker "$wb" --cookie "$cookie" --epmd "$port" >"$tmp/wb" 2>&1 &
pids="$pids $!"
wait_line "$tmp/boss" "CHILD w2 $wa"
wait_line "$tmp/boss" READY

# The shell's lines 1-3 of the guide.
out=$(timeout -k 5 30 erl -noshell -sname "$shell" -setcookie "$cookie" -start_epmd false \
    -eval "
        B = '$boss',
        io:format(\"~p~n\", [net_adm:ping(B)]),
        io:format(\"~p~n\", [gen_server:call({tally, B}, {work, w1, 21})]),
        io:format(\"~p~n\", [gen_server:call({tally, B}, {ask_erlang, node()})]),
        halt().")
expect="pong
{done,$wa,42}
{ok,\"$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')\"}"
if [ "$out" = "$expect" ]; then
    echo "PASS the shell calls the C server, and the C node calls Erlang back"
else
    echo "FAIL the shell's session:"
    echo "$out"
    exit 1
fi

# The shell's lines 4-7: rpc, erpc and spawn_monitor of cluster:double.
out=$(timeout -k 5 30 erl -noshell -sname "s1$$@localhost" -setcookie "$cookie" -start_epmd false \
    -eval "
        W = '$wa',
        Raise = fun(F) -> try F() catch C:E -> {C, E} end end,
        io:format(\"~p~n\", [rpc:call(W, cluster, double, [21])]),
        io:format(\"~p~n\", [Raise(fun() -> erpc:call(W, cluster, double, [x]) end)]),
        io:format(\"~p~n\", [Raise(fun() -> erpc:call(W, cluster, triple, [1]) end)]),
        {P, R} = spawn_monitor(W, cluster, double, [x]),
        io:format(\"~p~n\", [receive {'DOWN', R, process, P, Why} -> Why end]),
        halt().")
expect="42
{error,{exception,badarg,[{cluster,double,1,[]}]}}
{error,{exception,undef,[{cluster,triple,[1],[]}]}}
{badarg,[{cluster,double,1,[]}]}"
if [ "$out" = "$expect" ]; then
    echo "PASS the shell calls a C function by rpc, erpc and spawn_monitor"
else
    echo "FAIL the shell's rpc session:"
    echo "$out"
    exit 1
fi

# The node the children run on goes.
kill -9 "$wa_pid"
wait_line "$tmp/boss" "CHILD w2 $wb"
grep -q "child w1, pid .*reason noconnection" "$tmp/boss" ||
    { echo "FAIL no supervisor report of noconnection"; cat "$tmp/boss"; exit 1; }
out=$(timeout -k 5 30 erl -noshell -sname "s2$$@localhost" -setcookie "$cookie" -start_epmd false \
    -eval "io:format(\"~p~n\", [gen_server:call({tally, '$boss'}, {work, w1, 21})]), halt().")
if [ "$out" = "{done,$wb,42}" ]; then
    echo "PASS the supervisor moved its children: the work goes on on $wb"
else
    echo "FAIL after the kill: $out"
    exit 1
fi
