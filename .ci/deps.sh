#!/bin/sh
# Installs the Debian packages named as arguments that are missing, when run
# as root with apt-get available; otherwise says what is missing and goes on
# (the build then fails with a clear message if something really is needed).
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "warning: missing Debian packages:$missing (run as root to install them)" >&2
fi
