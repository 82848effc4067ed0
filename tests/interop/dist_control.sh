#!/bin/sh
# dist_control.sh BUILD_DIR SOURCE_DIR - our control-message codec
# (src/dist/control.h) against erl: erl encodes thousands of control tuples
# of every op with term_to_binary, our decoder reads them and our encoder
# writes them back byte for byte, in both term forms; tuples that break the
# protocol are refused (tests/interop/dist_control.escript lists the checks).
#
# One erl run and one helper run. Exit 77 (skipped) when erl is not
# installed; non-zero on any mismatch. DIST_SEED and DIST_COUNT vary the
# random messages; the default seed is fixed so CI runs the same ones.
set -eu

build_dir=${1:?usage: dist_control.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: dist_control.sh BUILD_DIR SOURCE_DIR}

if ! command -v escript >/dev/null 2>&1 || ! command -v erl >/dev/null 2>&1; then
    echo "dist_control: erl/escript not installed; skipped"
    exit 77
fi

helper="$build_dir/tests/interop/dist_control_helper"
if [ ! -x "$helper" ]; then
    echo "dist_control: $helper is missing (build the dist_control_helper target)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

seed=${DIST_SEED:-1}
count=${DIST_COUNT:-3000}
echo "dist_control: seed $seed, $count random messages (rerun with DIST_SEED=$seed)"
escript "$source_dir/tests/interop/dist_control.escript" "$helper" "$tmp" "$seed" "$count"
