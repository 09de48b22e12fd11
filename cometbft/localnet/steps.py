#!/usr/bin/env python3
"""Per-step consensus timings of a localnet run, from its nodes' logs.

Usage: steps.py OUT [OUT...], where each OUT is a run.sh output directory whose nodes ran with
LOG_LEVEL="consensus:debug,*:info". For every node and height (skipping the first 20 and the
last 2), the time from entering the height's round to receiving the proposal, to the complete
block, to the prevote, precommit and commit steps, and to the next height's round; printed as
mean, p50, p90 and max in milliseconds over all nodes. The logs have millisecond resolution.
"""
import re
import statistics
import sys
from datetime import datetime

LINE = re.compile(
    r"^\w\[(\d+-\d+-\d+)\|(\d+:\d+:\d+\.\d+)\] (.*?)\s{2,}.*?(?:height=|Proposal\{)(\d+)"
)
EVENTS = [
    ("entering new round", "new"),
    ("received proposal", "proposal"),
    ("received complete proposal block", "block"),
    ("entering prevote step", "prevote"),
    ("entering precommit step", "precommit"),
    ("entering commit step", "commit"),
]
STEPS = [
    ("round -> proposal", "new", "proposal"),
    ("proposal -> block", "proposal", "block"),
    ("block -> prevote", "block", "prevote"),
    ("prevote -> precommit", "prevote", "precommit"),
    ("precommit -> commit", "precommit", "commit"),
]


def events(path):
    """First time of each event per height in one node's log."""
    by_height = {}
    with open(path, errors="replace") as log:
        for line in log:
            m = LINE.match(line)
            if not m:
                continue
            for prefix, name in EVENTS:
                if m.group(3).startswith(prefix):
                    t = datetime.strptime(
                        m.group(1) + " " + m.group(2), "%Y-%m-%d %H:%M:%S.%f"
                    ).timestamp()
                    by_height.setdefault(int(m.group(4)), {}).setdefault(name, t)
    return by_height


def main():
    for out in sys.argv[1:]:
        rows = {}
        node = 0
        while True:
            try:
                ev = events(f"{out}/node{node}.log")
            except FileNotFoundError:
                break
            node += 1
            for h in sorted(ev)[20:-2]:
                e, nxt = ev[h], ev.get(h + 1, {})
                if len(e) < len(EVENTS) or "new" not in nxt:
                    continue
                for label, a, b in STEPS:
                    rows.setdefault(label, []).append((e[b] - e[a]) * 1000)
                rows.setdefault("commit -> next round", []).append((nxt["new"] - e["commit"]) * 1000)
                rows.setdefault("round -> next round", []).append((nxt["new"] - e["new"]) * 1000)
        print(f"{out} ({node} nodes)")
        for label, v in rows.items():
            v.sort()
            print(
                f"  {label:22s} n={len(v):4d} mean {statistics.mean(v):6.1f}"
                f"  p50 {v[len(v) // 2]:6.1f}  p90 {v[int(len(v) * 0.9)]:6.1f}  max {v[-1]:6.1f}"
            )


if __name__ == "__main__":
    main()
