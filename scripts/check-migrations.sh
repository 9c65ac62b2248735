#!/usr/bin/env bash
# A migration that has shipped is never edited: its SQL must hash to what migrations/shipped.sha256
# recorded when it was added. New migrations are added to that list in the commit that adds them.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
while read -r sum file; do
  [ -n "$file" ] || continue
  if [ ! -f "$file" ]; then
    echo "check-migrations: shipped migration $file was removed" >&2
    fail=1
  elif [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sum" ]; then
    echo "check-migrations: shipped migration $file was edited; add a new migration instead" >&2
    fail=1
  fi
done < migrations/shipped.sha256

for file in migrations/*.sql; do
  grep -q " $file\$" migrations/shipped.sha256 || {
    echo "check-migrations: $file is not listed in migrations/shipped.sha256 (run: sha256sum $file >> migrations/shipped.sha256)" >&2
    fail=1
  }
done
exit $fail
