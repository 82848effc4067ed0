#!/bin/sh
# dist_node.sh BUILD_DIR SOURCE_DIR - the node layer (include/ambitious/node.h)
# against real erl nodes: tests/interop/dist_node.escript drives C nodes
# (dist_node_helper, on the public API) through the reference's checks,
# both directions, with short and with long names; then erl uses the
# embedded EPMD-compatible registry a C node serves when no epmd runs.
#
# A private epmd on a random loopback port (started and stopped by pid), a
# random cookie; C nodes and erl nodes are stopped by pid; every wait has a
# deadline. Exit 77 (skipped) when erl is not installed.
set -eu

build_dir=${1:?usage: dist_node.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: dist_node.sh BUILD_DIR SOURCE_DIR}

for tool in erl escript epmd; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "dist_node: $tool not installed; skipped"
        exit 77
    fi
done
helper="$build_dir/tests/interop/dist_node_helper"
if [ ! -x "$helper" ]; then
    echo "dist_node: $helper is missing (build the dist_node_helper target)" >&2
    exit 1
fi

tmp=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# 20000..31999: below Linux's ephemeral ports (32768 up): a port that some
# connection holds as its local end cannot be listened on (EADDRINUSE).
random_port() {
    echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000))
}
# Waits (at most 10 s) until something answers EPMD's NAMES on port $1.
wait_epmd() {
    deadline=$(($(date +%s) + 10))
    until epmd -port "$1" -names >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "dist_node: no epmd on port $1" >&2
            return 1
        fi
        sleep 0.1
    done
}

cookie=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

# 1. Against the system's epmd (private port): every check, short names,
#    then the basics with long names.
port=$(random_port)
export ERL_EPMD_PORT=$port ERL_EPMD_ADDRESS=127.0.0.1
epmd -port "$port" -address 127.0.0.1 >"$tmp/epmd.log" 2>&1 &
epmd_pid=$!
pids="$pids $epmd_pid"
wait_epmd "$port"
echo "dist_node: private epmd on port $port"
status=0
timeout -k 5 400 escript "$source_dir/tests/interop/dist_node.escript" "$helper" "$cookie" short ||
    status=1
timeout -k 5 120 escript "$source_dir/tests/interop/dist_node.escript" "$helper" "$cookie" long ||
    status=1
kill "$epmd_pid" 2>/dev/null || true
wait "$epmd_pid" 2>/dev/null || true

# 2. No epmd at all: a C node serves the registry, erl registers with it and
#    finds the C node there.
port=$(random_port)
export ERL_EPMD_PORT=$port
: >"$tmp/emb.log"
"$helper" "emb_$$@localhost" "$cookie" --epmd "$port" >"$tmp/emb.log" 2>&1 &
cpid=$!
pids="$pids $cpid"
deadline=$(($(date +%s) + 15))
until grep -q '^READY' "$tmp/emb.log"; do
    if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$cpid" 2>/dev/null; then
        echo "FAIL embedded epmd: the C node did not start" >&2
        cat "$tmp/emb.log" >&2
        exit 1
    fi
    sleep 0.1
done
if out=$(timeout -k 5 30 erl -noshell -start_epmd false -sname "e_$$@localhost" \
        -setcookie "$cookie" -eval "
            N = 'emb_$$@localhost',
            R = net_adm:ping(N),
            {ok, Names} = erl_epmd:names(\"localhost\"),
            Mine = lists:keymember(\"e_$$\", 1, Names),
            io:format(\"~p ~p~n\", [R, Mine]),
            halt()." 2>&1) && [ "$out" = "pong true" ]; then
    echo "PASS erl registers with a C node's embedded epmd and pings it"
else
    echo "FAIL erl with the embedded epmd: $out"
    status=1
fi
exit $status
