#!/bin/sh
# Installs the library from the build dir $1 into a scratch prefix and builds
# the out-of-tree consumer project $2 against it twice: with CMake's
# find_package(ambitious) and with pkg-config. Both programs must run.
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
"$work/b/consumer_shared"
"$work/b/consumer_static"
if command -v pkg-config >/dev/null 2>&1; then
  PKG_CONFIG_PATH=$(dirname "$(find "$work/prefix" -name ambitious.pc)")
  export PKG_CONFIG_PATH
  # The .pc file names the configured prefix; point it at the scratch one.
  pc="pkg-config --define-variable=prefix=$work/prefix"
  cc -o "$work/consumer_pc" "$src/main.c" $($pc --cflags --libs ambitious) \
     -Wl,-rpath,"$($pc --variable=libdir ambitious)"
  "$work/consumer_pc"
fi
echo "consumer OK"
