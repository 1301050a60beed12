"""A Markdown table of CPU by process name from `perf report --sort comm
--stdio -q -F sample,comm` on stdin (cpu-clock samples at 1 kHz: one
sample is a millisecond of CPU); the idle task is left out."""
import sys

rows = []
for line in sys.stdin:
    parts = line.split(None, 1)
    if len(parts) == 2 and parts[0].isdigit() and parts[1].strip() != "swapper":
        rows.append((int(parts[0]), parts[1].strip()))
rows.sort(reverse=True)
total = sum(n for n, _ in rows)
print("| process | CPU ms | share |")
print("|---|---|---|")
for n, name in rows[:15]:
    print(f"| `{name}` | {n} | {100 * n / max(total, 1):.0f}% |")
rest = sum(n for n, _ in rows[15:])
print(f"| everything else | {rest} | {100 * rest / max(total, 1):.0f}% |")
print(f"| **all busy CPU** | {total} | 100% |")
