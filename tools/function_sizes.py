#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""function_sizes.py: the longest functions in C++ sources, by a brace count from each
top-level (or class-level) definition. A reviewer's tool for the size rule of
DEVELOPERS.md (no function over ~150 lines); heuristic, not a parser.
Usage: tools/function_sizes.py [--top N] DIR..."""
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


def main():
    args = sys.argv[1:]
    top = 10
    if args[:1] == ["--top"]:
        top, args = int(args[1]), args[2:]
    found = []
    for d in args:
        for p in sorted(Path(d).rglob("*.cpp")):
            found += functions(p)
    for n, where, name in sorted(found, reverse=True)[:top]:
        print(f"{n:5d}  {where}  {name}")


if __name__ == "__main__":
    main()
