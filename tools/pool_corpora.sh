#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pool_corpora.sh: writes the corpora of configs/pool.yaml into corpora/generated/ (not
# committed): German text from Debian's fortunes-de (GPL-2+, installed by tools/setup.sh;
# every fortune a document, every 10th held out) and tiny Shakespeare cut into training
# (first 90%) and held-out (last 10%) text. Idempotent; exits 1 naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/games/fortunes/de
out=corpora/generated
if ! ls "$src"/*.u8 >/dev/null 2>&1; then
  echo "pool_corpora: $src/*.u8 not found: install Debian's fortunes-de (tools/setup.sh does)" >&2
  exit 1
fi
mkdir -p "$out"
# Fortunes are separated by lines holding '%'; a blank line separates documents here.
cat "$src"/*.u8 | awk -v train="$out/german-train.txt.tmp" -v held="$out/german-heldout.txt.tmp" '
  BEGIN { n = 0; printf "" > train; printf "" > held }
  /^%$/ { f = (n % 10 == 9) ? held : train; printf "\n" >> f; n++; next }
  { f = (n % 10 == 9) ? held : train; print >> f }
'
mv "$out/german-train.txt.tmp" "$out/german-train.txt"
mv "$out/german-heldout.txt.tmp" "$out/german-heldout.txt"
total=$(wc -c < corpora/tinyshakespeare.txt)
cut_at=$((total * 9 / 10))
head -c "$cut_at" corpora/tinyshakespeare.txt > "$out/shakespeare-train.txt"
tail -c +"$((cut_at + 1))" corpora/tinyshakespeare.txt > "$out/shakespeare-heldout.txt"
wc -c "$out"/*.txt
