#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""check_architecture.py: docs/architecture.md names every source file of the production
folders, in its folder's section, and names no file that does not exist (the `format`
test runs it through tools/format.sh --check). A table cell `name.h/.cpp` names both
files; `a.h`, `b.cpp` name one each. Exits 1 listing what is missing or stale.
Usage: tools/check_architecture.py [ROOT]"""
import re
import subprocess
import sys
from pathlib import Path

FOLDERS = ["core", "comm", "data", "model", "parallel", "checkpoint", "recruitment", "trainer", "pool", "run",
           "report", "export", "launch"]
EXTS = (".h", ".cpp", ".cu")


def named_in(doc):
    """folder -> set of file names named in that folder's section."""
    named, folder = {}, None
    for line in doc.splitlines():
        m = re.match(r"^## ([a-z_]+)/", line)
        if m:
            folder = m.group(1)
            named.setdefault(folder, set())
            continue
        if line.startswith("## "):
            folder = None
        if folder is None or not line.startswith("|"):
            continue
        for token in re.findall(r"`([A-Za-z0-9_]+(?:\.[a-z]+)(?:/\.[a-z]+)*)`", line.split("|")[1]):
            first, *more = token.split("/")
            stem = first.rsplit(".", 1)[0]
            named[folder].update([first] + [stem + ext for ext in more])
    return named


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    try:
        files = subprocess.check_output(["git", "ls-files", *FOLDERS], cwd=root, text=True,
                                        stderr=subprocess.DEVNULL).split()
    except (subprocess.CalledProcessError, FileNotFoundError):  # a source archive without git
        files = [str(p.relative_to(root)) for f in FOLDERS for p in (root / f).rglob("*")]
    sources = {f for f in files if f.endswith(EXTS) and f.count("/") == 1}
    named = named_in((root / "docs/architecture.md").read_text())
    missing = sorted(f for f in sources if f.split("/")[1] not in named.get(f.split("/")[0], set()))
    stale = sorted(f"{d}/{n}" for d, names in named.items() for n in names if f"{d}/{n}" not in sources)
    if missing:
        print(f"check_architecture: {len(missing)} source file(s) not named in docs/architecture.md under their "
              f"folder: {' '.join(missing)}", file=sys.stderr)
    if stale:
        print(f"check_architecture: docs/architecture.md names {len(stale)} file(s) that do not exist: "
              f"{' '.join(stale)}", file=sys.stderr)
    if missing or stale:
        return 1
    print(f"check_architecture: {len(sources)} source files, each named in docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
