#!/bin/sh
# dist_epmd.sh BUILD_DIR SOURCE_DIR - the server side of the EPMD protocol
# (src/dist/epmd_proto.h) answering real clients: dist_wire_helper serves
# EPMD on a random loopback port, and
#   1. an erl node registers with it (ALIVE2_REQ, ALIVE2_X_RESP),
#   2. the real `epmd -names` client lists that node (NAMES_REQ),
#   3. a second erl node finds the first through it (PORT_PLEASE2_REQ) and
#      net_adm:ping gets pong,
#   4. a third node asking for the same name is refused and does not start,
#   5. when the first node dies its registration goes (the ALIVE2
#      connection closed).
# Every process is started here and stopped by pid; every wait has a
# deadline. Exit 77 (skipped) when erl is not installed.
set -eu

build_dir=${1:?usage: dist_epmd.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: dist_epmd.sh BUILD_DIR SOURCE_DIR}
: "$source_dir"

for tool in erl epmd; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "dist_epmd: $tool not installed; skipped"
        exit 77
    fi
done
helper="$build_dir/tests/interop/dist_wire_helper"
if [ ! -x "$helper" ]; then
    echo "dist_epmd: $helper is missing (build the dist_wire_helper target)" >&2
    exit 1
fi

tmp=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

passed=0
failed=0
check() { # check NAME COMMAND...
    name=$1
    shift
    if "$@"; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}
# wait_for SECONDS COMMAND...: until the command succeeds or time is up.
wait_for() {
    limit=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$limit" ] || return 1
        sleep 0.1
    done
}

port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000))
export ERL_EPMD_PORT=$port ERL_EPMD_ADDRESS=127.0.0.1
"$helper" epmd "$port" >"$tmp/epmd.log" 2>&1 &
pids="$pids $!"
if ! wait_for 10 grep -q '^READY' "$tmp/epmd.log"; then
    echo "dist_epmd: the test EPMD did not start on port $port" >&2
    cat "$tmp/epmd.log" >&2
    exit 1
fi
echo "dist_epmd: test EPMD on port $port"

cookie=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
a=a_$$
timeout -k 5 120 erl -sname "$a" -setcookie "$cookie" -noshell \
    -eval 'receive after 100000 -> halt() end' >"$tmp/a.log" 2>&1 &
a_pid=$!
pids="$pids $a_pid"

registered() { grep -q "^REGISTERED $a " "$tmp/epmd.log"; }
check "erl registers with our EPMD" wait_for 30 registered
listed() { epmd -port "$port" -names 2>/dev/null | grep -q "^name $a at port "; }
check "epmd -names lists it through our NAMES answer" wait_for 10 listed

timeout -k 5 60 erl -sname "b_$$" -setcookie "$cookie" -noshell -eval "
    [_, H] = string:split(atom_to_list(node()), \"@\"),
    io:format(\"~p~n\", [net_adm:ping(list_to_atom(\"$a@\" ++ H))]),
    halt()." >"$tmp/b.log" 2>&1 || true
check "another node finds it through PORT_PLEASE2 and pings it" grep -q '^pong' "$tmp/b.log"

timeout -k 5 60 erl -sname "$a" -setcookie "$cookie" -noshell -eval 'halt().' \
    >"$tmp/dup.log" 2>&1 && dup=0 || dup=$?
refused() { [ "$dup" != 0 ] && grep -q "REFUSED $a" "$tmp/epmd.log"; }
check "a second node with the same name is refused" refused

kill "$a_pid" 2>/dev/null || true
wait "$a_pid" 2>/dev/null || true
gone() { grep -q "^UNREGISTERED $a" "$tmp/epmd.log" && ! listed; }
check "its registration ends with its connection" wait_for 10 gone

echo "dist_epmd: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
