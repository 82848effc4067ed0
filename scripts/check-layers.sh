#!/usr/bin/env bash
# scripts/check-layers.sh - checks the #include lines of src/ against the
# layering of docs/design/layers.md (DESIGN §1: layers point one way).
#
#   scripts/check-layers.sh [ROOT]     default ROOT: this script's ../
#
# Each folder of src/ is a layer; a file may include what its layer may
# (below), its own folder's headers and system headers. A private include
# resolves as the compiler does: the includer's folder, then src/, then
# src/core/ (the library's include path). A public header
# (ambitious/<name>.h) belongs to the layer that implements it. Prints each
# violation as file:line and exits 1 if there is any; a folder or public
# header missing from the tables below is a violation too, so a new layer
# states its place before its first file.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# What each layer may include besides itself. Behaviours: public headers only.
declare -A may=(
  [core]=""
  [arch]="core"
  [runtime]="arch core"
  [process]="runtime arch core"
  [gen_server]="public"
  [supervisor]="public"
  [application]="public"
  [dist]="core"
  [io]="process runtime arch core"
)
# The layer of each public header.
declare -A public=(
  [ambitious.h]=behaviour [core.h]=core [term.h]=core [etf.h]=core
  [process.h]=process [logger.h]=process
  [gen_server.h]=behaviour [supervisor.h]=behaviour [application.h]=behaviour
  [socket.h]=io
)

bad=0
report() { echo "$1: $2" >&2; bad=1; }

for dir in src/*/; do
  layer=$(basename "$dir")
  if [[ ! -v may[$layer] ]]; then
    report "$dir" "a folder docs/design/layers.md and this script do not know"
    continue
  fi
  allowed=" $layer ${may[$layer]} "
  while IFS=: read -r file line text; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$text")
    if [[ $inc == ambitious/* || $inc == ambitious.h ]]; then
      name=${inc#ambitious/}
      if [[ ! -v public[$name] ]]; then
        report "$file:$line" "public header $inc has no layer in this script"
      elif [[ $allowed != *" public "* && $allowed != *" ${public[$name]} "* ]]; then
        report "$file:$line" "$layer may not include $inc (the ${public[$name]} layer)"
      fi
      continue
    fi
    [[ $text =~ \#[[:space:]]*include[[:space:]]*\" ]] || continue # <system.h>
    if [[ -f $(dirname "$file")/$inc ]]; then
      target=$(basename "$(dirname "$file")")
    elif [[ -f src/$inc ]]; then
      target=${inc%%/*}
    elif [[ -f src/core/$inc ]]; then
      target=core
    else
      report "$file:$line" "cannot resolve \"$inc\""
      continue
    fi
    if [[ $target != "$layer" && $allowed != *" $target "* ]]; then
      report "$file:$line" "$layer may not include \"$inc\" (the $target layer)"
    fi
  done < <(grep -rnHE --include='*.[chS]' '^[[:space:]]*#[[:space:]]*include' "$dir" || true)
done
exit $bad
