#!/usr/bin/env bash
# Checks the layer rules of docs/ARCHITECTURE.md on the source tree:
#  - a layer includes headers only from itself and the layers it may depend on;
#  - libfabric/verbs headers (<rdma/...>, <infiniband/...>) appear only in fabric/;
#  - HTTP (Boost.Beast) appears only in server/, tools/, bench/ and test/.
# Prints every violation and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
  [common]="common"
  [config]="common config"
  [fabric]="common config fabric"
  [sst]="common config fabric sst"
  [rdmc]="common config fabric rdmc"
  [core]="common config fabric sst rdmc core"
  [kvstore]="common config core kvstore"
  [server]="common config fabric sst rdmc core kvstore server"
)
layers="common config fabric sst rdmc core kvstore server tools test bench"

violations=0
report() { echo "layer violation: $*"; violations=$((violations + 1)); }

for layer in "${!allowed[@]}"; do
  [ -d "$layer" ] || continue
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include\s*"([a-z_]+)\/.*/\1/' <<<"$text")
    case " $layers " in *" $target "*) ;; *) continue ;; esac
    case " ${allowed[$layer]} " in
      *" $target "*) ;;
      *) report "$file:$line includes $target/ (allowed: ${allowed[$layer]})" ;;
    esac
  done < <(grep -rnE '#include\s*"[a-z_]+/' "$layer" --include='*.hpp' --include='*.cpp' || true)
done

while IFS= read -r hit; do
  report "$hit: libfabric/verbs header outside fabric/"
done < <(grep -rnE '#include\s*<(rdma|infiniband)/' --include='*.hpp' --include='*.cpp' \
           common config sst rdmc core kvstore server tools 2>/dev/null || true)

while IFS= read -r hit; do
  report "$hit: HTTP below server/"
done < <(grep -rnE '#include\s*<boost/beast' --include='*.hpp' --include='*.cpp' \
           common config fabric sst rdmc core kvstore 2>/dev/null || true)

if [ "$violations" -gt 0 ]; then
  echo "$violations layer violation(s)"
  exit 1
fi
echo "layers ok"
