#!/bin/sh
# etf_roundtrip.sh BUILD_DIR SOURCE_DIR - our External Term Format codec
# against a real erl: thousands of random terms of every type go through
# erl's term_to_binary, our decoder, printer, parser and encoder, and erl's
# binary_to_term (tests/interop/etf_roundtrip.escript says what is checked).
#
# One erl run and one helper run for the whole batch. Exit 77 (skipped) when
# erl is not installed; non-zero on any mismatch, after printing the first
# failing terms. ETF_SEED and ETF_COUNT override the seed and the number of
# random terms (the fixed edge cases always run); the default seed is fixed
# so that CI runs the same terms every time.
set -eu

build_dir=${1:?usage: etf_roundtrip.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: etf_roundtrip.sh BUILD_DIR SOURCE_DIR}

if ! command -v escript >/dev/null 2>&1 || ! command -v erl >/dev/null 2>&1; then
    echo "etf_roundtrip: erl/escript not installed; skipped"
    exit 77
fi

helper="$build_dir/tests/interop/etf_interop_helper"
if [ ! -x "$helper" ]; then
    echo "etf_roundtrip: $helper is missing (build the etf_interop_helper target)" >&2
    exit 1
fi

tmp=$(mktemp -d) # under $TMPDIR or /tmp
trap 'rm -rf "$tmp"' EXIT INT TERM

seed=${ETF_SEED:-1}
count=${ETF_COUNT:-3000}
echo "etf_roundtrip: seed $seed, $count random terms (rerun with ETF_SEED=$seed)"
escript "$source_dir/tests/interop/etf_roundtrip.escript" "$helper" "$tmp" "$seed" "$count"
