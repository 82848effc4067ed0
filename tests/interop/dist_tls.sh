#!/bin/sh
# dist_tls.sh BUILD_DIR SOURCE_DIR - TLS distribution (node.h's tls_*
# options) against real erl over inet_tls_dist (-proto_dist inet_tls
# -ssl_dist_optfile): tests/interop/dist_tls.escript, an erl node over TLS,
# drives C nodes (dist_node_helper) and erl subprocesses through C<->erl
# both ways, certificates from another CA refused both ways, and plain TCP
# against TLS refused every way without crashing anyone.
#
# Certificates are made here, at run time, with the openssl CLI into a
# temp dir (removed at exit): a CA, a node certificate it signs (for
# localhost and 127.0.0.1, used by every good node, C and erl), another CA
# and a certificate it signs. A private epmd on a random loopback port
# (started and stopped by pid), a random cookie. Exit 77 (skipped) when
# erl, erl's ssl application (Debian's erlang-ssl) or openssl is missing.
set -eu

build_dir=${1:?usage: dist_tls.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: dist_tls.sh BUILD_DIR SOURCE_DIR}

for tool in erl escript epmd openssl; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "dist_tls: $tool not installed; skipped"
        exit 77
    fi
done
if ! erl -noshell -eval 'halt(case code:which(inet_tls_dist) of non_existing -> 1; _ -> 0 end).' \
        >/dev/null 2>&1; then
    echo "dist_tls: erl has no ssl application (Debian: erlang-ssl); skipped"
    exit 77
fi
helper="$build_dir/tests/interop/dist_node_helper"
if [ ! -x "$helper" ]; then
    echo "dist_tls: $helper is missing (build the dist_node_helper target)" >&2
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

# make_ca NAME, make_leaf NAME CA: EC P-256 keys; leaves for localhost and
# 127.0.0.1, usable as TLS server and client.
make_ca() {
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" -days 2 -subj "/CN=ambitious test $1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}
make_leaf() {
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$tmp/$1.key" -out "$tmp/$1.csr" -subj "/CN=$1" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" \
        >"$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.pem" -CAkey "$tmp/$2.key" \
        -CAcreateserial -out "$tmp/$1.pem" -days 2 -extfile "$tmp/$1.ext" >/dev/null 2>&1
}
make_ca ca
make_ca other_ca
make_leaf node ca
make_leaf bad other_ca
# erl's ssl_dist_optfile: verification on both ways, as node.h's C side.
# The bad erl trusts the right CA, so it is the C node's verification of
# its certificate that refuses it.
for kind in good:node bad:bad; do
    conf=${kind%%:*} cert=${kind#*:}
    cat >"$tmp/$conf.conf" <<CONF
[{server, [{certfile, "$tmp/$cert.pem"}, {keyfile, "$tmp/$cert.key"},
           {cacertfile, "$tmp/ca.pem"}, {verify, verify_peer},
           {fail_if_no_peer_cert, true}]},
 {client, [{certfile, "$tmp/$cert.pem"}, {keyfile, "$tmp/$cert.key"},
           {cacertfile, "$tmp/ca.pem"}, {verify, verify_peer}]}].
CONF
done

random_port() {
    echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000))
}
# A private epmd; a random port may be taken (epmd then exits): another.
started=
for attempt in 1 2 3 4 5; do
    port=$(random_port)
    epmd -port "$port" -address 127.0.0.1 >"$tmp/epmd.log" 2>&1 &
    epmd_pid=$!
    deadline=$(($(date +%s) + 10))
    while kill -0 "$epmd_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
        if epmd -port "$port" -names >/dev/null 2>&1; then
            started=1
            break
        fi
        sleep 0.1
    done
    [ -n "$started" ] && break
    kill "$epmd_pid" 2>/dev/null || true
    wait "$epmd_pid" 2>/dev/null || true
done
if [ -z "$started" ]; then
    echo "dist_tls: no epmd started" >&2
    cat "$tmp/epmd.log" >&2
    exit 1
fi
pids="$pids $epmd_pid"
export ERL_EPMD_PORT=$port ERL_EPMD_ADDRESS=127.0.0.1
echo "dist_tls: private epmd on port $port"
cookie=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
ERL_FLAGS="-proto_dist inet_tls -ssl_dist_optfile $tmp/good.conf" \
    timeout -k 5 400 escript "$source_dir/tests/interop/dist_tls.escript" "$helper" "$cookie" "$tmp"
