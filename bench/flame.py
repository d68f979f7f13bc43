"""Summarise py-spy's raw (collapsed) output: inclusive share of the frames that matter under a root frame.

    py-spy record -f raw -o out.txt -- python ...
    python -m bench.flame out.txt _fire_loop [pattern ...]
"""
from __future__ import annotations

import re
import sys
from collections import Counter


def summarise(path: str, root: str, top: int = 30, patterns=()) -> list[tuple[str, float]]:
    inclusive: Counter = Counter()
    total = 0
    for line in open(path, encoding="utf-8", errors="replace"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if root not in stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        start = next(i for i, f in enumerate(frames) if root in f)
        seen = set()
        for f in frames[start + 1:]:
            name = re.sub(r" \(.*?site-packages/", " (", f)
            name = re.sub(r":\d+\)$", ")", name)
            if name not in seen:
                seen.add(name)
                inclusive[name] += n
    out = [(name, 100.0 * n / total) for name, n in inclusive.most_common()]
    if patterns:
        out = [(name, share) for name, share in out if any(p in name for p in patterns)]
    return out[:top], total


if __name__ == "__main__":
    rows, total = summarise(sys.argv[1], sys.argv[2], int(60), sys.argv[3:])
    print(f"{total} samples under {sys.argv[2]}")
    for name, share in rows:
        print(f"{share:5.1f}%  {name}")
