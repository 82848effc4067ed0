#!/bin/sh
# dist_wire.sh BUILD_DIR SOURCE_DIR - the distribution protocol layer
# (src/dist: EPMD client, handshake both ways, frames, fragments, control
# messages) against a real erl node and a real epmd, through the test C node
# dist_wire_helper (tests/interop/dist_wire.escript lists the checks).
#
# A private epmd on a random loopback port, started and stopped by pid; a
# random cookie; every wait has a deadline. Exit 77 (skipped) when erl is
# not installed. DIST_CAPTURE_DIR=dir keeps what the C node received (as
# fuzz seeds, in dir/dist_{frame,control,handshake,epmd}).
set -eu

build_dir=${1:?usage: dist_wire.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: dist_wire.sh BUILD_DIR SOURCE_DIR}

for tool in erl escript epmd; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "dist_wire: $tool not installed; skipped"
        exit 77
    fi
done
helper="$build_dir/tests/interop/dist_wire_helper"
if [ ! -x "$helper" ]; then
    echo "dist_wire: $helper is missing (build the dist_wire_helper target)" >&2
    exit 1
fi

tmp=$(mktemp -d)
epmd_pid=
cleanup() {
    if [ -n "$epmd_pid" ]; then
        kill "$epmd_pid" 2>/dev/null || true
        wait "$epmd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000))
export ERL_EPMD_PORT=$port ERL_EPMD_ADDRESS=127.0.0.1
epmd -port "$port" -address 127.0.0.1 >"$tmp/epmd.log" 2>&1 &
epmd_pid=$!
deadline=$(($(date +%s) + 10))
until epmd -port "$port" -names >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$epmd_pid" 2>/dev/null; then
        echo "dist_wire: epmd did not start on port $port" >&2
        cat "$tmp/epmd.log" >&2
        exit 1
    fi
    sleep 0.1
done

cookie=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
capture=${DIST_CAPTURE_DIR:-$tmp/capture}
mkdir -p "$capture/dist_frame" "$capture/dist_control" "$capture/dist_handshake" \
    "$capture/dist_epmd"
echo "dist_wire: private epmd on port $port"
timeout -k 5 150 escript "$source_dir/tests/interop/dist_wire.escript" \
    "$helper" "$capture" "$cookie"
