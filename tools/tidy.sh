#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tidy.sh: clang-tidy's checks of .clang-tidy (bugprone, performance) over the project's
# own sources, from the build directory's compile_commands.json; exits non-zero on any
# finding. Slow (LibTorch's headers): ~10 s per file and core; not part of the test
# command. Usage: tools/tidy.sh [build_dir] [jobs] [files...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=${2:-$(getconf _NPROCESSORS_ONLN)}
shift $(( $# > 2 ? 2 : $# ))
tidy=$(command -v clang-tidy || command -v clang-tidy-14 || true)
[ -n "$tidy" ] || { echo "tidy.sh: clang-tidy is needed (apt install clang-tidy)" >&2; exit 2; }
[ -f "$build/compile_commands.json" ] || { echo "tidy.sh: $build/compile_commands.json missing: configure first (make build)" >&2; exit 2; }
if [ $# -gt 0 ]; then files=("$@"); else
  mapfile -t files < <(git ls-files 'core/*.cpp' 'comm/*.cpp' 'data/*.cpp' 'model/*.cpp' 'parallel/*.cpp' 'checkpoint/*.cpp' 'recruitment/*.cpp' \
                                    'trainer/*.cpp' 'pool/*.cpp' 'run/*.cpp' 'report/*.cpp' 'launch/*.cpp')
fi
log=$(mktemp /tmp/localist-tidy.XXXXXX)
# The kernel sources need the capability macro their build gives them (compile_commands has it).
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I{} sh -c \
  "'$tidy' -p '$build' --quiet '{}' >>'$log' 2>&1 || echo 'tidy.sh: findings in {}' >>'$log'"
if grep -q "tidy.sh: findings in\|error:" "$log"; then
  grep -E "error:|warning:|tidy.sh: findings" "$log" | sort -u | head -100
  echo "tidy.sh: findings in $(grep -c 'tidy.sh: findings in' "$log") of ${#files[@]} files (full log: $log)" >&2
  exit 1
fi
echo "tidy.sh: ${#files[@]} files clean"
rm -f "$log"
