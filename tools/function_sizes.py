#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""function_sizes.py: the longest functions in C++ sources, by a brace count from each
top-level (or class-level) definition: the size rules (no production function over 100
lines, no source file over 500). With --check it prints nothing but what breaks a rule
and exits 1 then (the `format` test runs it over the production folders); heuristic,
not a parser.
Usage: tools/function_sizes.py [--top N | --check] DIR..."""
import re
import sys
from pathlib import Path


def functions(path):
    """(lines, where, signature) of each function defined at namespace level."""
    lines = path.read_text(errors="replace").splitlines()
    out, i = [], 0
    head = re.compile(r"^[A-Za-z_~].*\(")
    skip = re.compile(r"^(namespace|struct|class|enum|using|template|typedef|static_assert|#)")
    while i < len(lines):
        if not head.match(lines[i]) or skip.match(lines[i]) or lines[i].rstrip().endswith(";"):
            i += 1
            continue
        j = i  # the signature may span lines: find its opening brace
        while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
            j += 1
        if j == len(lines) or "{" not in lines[j]:
            i = j + 1
            continue
        depth, k = 0, j
        while k < len(lines):
            depth += lines[k].count("{") - lines[k].count("}")
            if depth <= 0:
                break
            k += 1
        out.append((k - i + 1, f"{path}:{i + 1}", re.sub(r"\s+", " ", lines[i].strip())[:90]))
        i = k + 1
    return out


MAX_FUNCTION_LINES, MAX_FILE_LINES = 100, 500


def main():
    args = sys.argv[1:]
    top, check = 10, False
    if args[:1] == ["--top"]:
        top, args = int(args[1]), args[2:]
    elif args[:1] == ["--check"]:
        check, args = True, args[1:]
    found, files = [], []
    for d in args:
        for p in sorted(Path(d).rglob("*.cpp")):
            found += functions(p)
        files += sorted(Path(d).rglob("*.cpp")) + sorted(Path(d).rglob("*.h"))
    if not check:
        for n, where, name in sorted(found, reverse=True)[:top]:
            print(f"{n:5d}  {where}  {name}")
        return 0
    long_functions = [f for f in found if f[0] > MAX_FUNCTION_LINES]
    long_files = [(len(p.read_text(errors="replace").splitlines()), p) for p in files]
    long_files = [f for f in long_files if f[0] > MAX_FILE_LINES]
    for n, where, name in sorted(long_functions, reverse=True):
        print(f"function_sizes: {where} {name}: {n} lines (the rule: {MAX_FUNCTION_LINES}); split it by its steps",
              file=sys.stderr)
    for n, p in sorted(long_files, reverse=True):
        print(f"function_sizes: {p}: {n} lines (the rule: {MAX_FILE_LINES}); split it by concept", file=sys.stderr)
    return 1 if long_functions or long_files else 0


if __name__ == "__main__":
    sys.exit(main())
