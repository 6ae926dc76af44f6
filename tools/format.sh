#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# format.sh: the tree's one C++ style (.clang-format) and its licence lines. Without
# arguments it formats every tracked C++ file in place; with --check (what the test
# command runs, CTest `format`) it changes nothing and fails, naming the files, when a
# file is not formatted, a source file lacks its SPDX line, docs/architecture.md does
# not name a source file (tools/check_architecture.py), or a production function or file
# breaks the size rules (tools/function_sizes.py --check).
# Usage: tools/format.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[ "${1:-}" = "--check" ] && check=1
fmt=$(command -v clang-format || command -v clang-format-14 || true)
[ -n "$fmt" ] || { echo "format.sh: clang-format is needed (tools/setup.sh installs it)" >&2; exit 2; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t cxx < <(git ls-files '*.cpp' '*.h')
  mapfile -t sources < <(git ls-files '*.cpp' '*.h' '*.sh' '*.py' '*.cmake' '*.js' '*.css' CMakeLists.txt '*/CMakeLists.txt' Makefile)
else  # a source archive without git metadata
  mapfile -t cxx < <(find . -path ./build -prune -o \( -name '*.cpp' -o -name '*.h' \) -print | grep -v '^./build')
  sources=("${cxx[@]}")
fi
if [ $check -eq 0 ]; then
  "$fmt" -i --style=file "${cxx[@]}"
  echo "format.sh: formatted ${#cxx[@]} files"
  exit 0
fi
bad=()
for f in "${cxx[@]}"; do
  "$fmt" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
unlicensed=()
for f in "${sources[@]}"; do
  head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' || unlicensed+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format.sh: ${#bad[@]} file(s) not in the tree's style (run tools/format.sh): ${bad[*]}" >&2
fi
if [ ${#unlicensed[@]} -gt 0 ]; then
  echo "format.sh: ${#unlicensed[@]} file(s) without an SPDX line in their first 3 lines: ${unlicensed[*]}" >&2
fi
mapped=0
python3 tools/check_architecture.py >/dev/null || mapped=1
sized=0
python3 tools/function_sizes.py --check core comm data model parallel checkpoint recruitment trainer pool run report \
  launch || sized=1
[ ${#bad[@]} -eq 0 ] && [ ${#unlicensed[@]} -eq 0 ] && [ $mapped -eq 0 ] && [ $sized -eq 0 ] || exit 1
echo "format.sh: ${#cxx[@]} C++ files formatted, ${#sources[@]} sources licensed, every source file mapped in docs/architecture.md, sizes within the rules"
