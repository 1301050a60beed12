#!/usr/bin/env python3
"""Time breakdown of a `terraform plan` (or apply) from its TF_LOG=trace log.

Usage: breakdown.py TITLE TRACE_LOG

Terraform stamps every line it logs, including the provider's own hclog lines
(stderr); the provider's debug events carry measured durations (connect_ms,
kex_ms, auth_ms, tcp_ms, channel_ms, elapsed_ms). Prints a Markdown table:
per gRPC call (from Terraform's `GRPCProvider.v6: CALL` line to its next call
in the same provider process) and per remote round trip (the provider's own
figures), as medians over the resources when there are several.
"""
import re
import statistics
import sys
from datetime import datetime

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \[(\w+)\]\s+(.*)$")


def ms(stamp):
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp() * 1000


def field(text, name):
    m = re.search(rf"\b{name}=(\"[^\"]*\"|\S+)", text)
    return m.group(1).strip('"') if m else None


def main():
    title, path = sys.argv[1], sys.argv[2]
    events = []
    for raw in open(path, encoding="utf-8", errors="replace"):
        m = LINE.match(raw)
        if m:
            events.append((ms(m.group(1)), m.group(3)))
    start, end = events[0][0], events[-1][0]
    plugin_starts = [t for t, e in events if e.startswith("provider: starting plugin")]
    plugin_exits = [t for t, e in events if e.startswith("provider: plugin process exited")]
    # Per resource and gRPC call: from the trace line before the call to the
    # first line that needs its answer (Terraform logs no call completions).
    spans = {
        "UpgradeResourceState": (r"upgradeResourceState: schema version of (\S+) ", r"writeResourceInstanceState to prevRunState for (\S+)$"),
        "ReadResource": (r"NodeAbstractResourceInstance.refresh for (\S+)$", r'Re-validating config for "([^"]+)"'),
        "ValidateResourceConfig + PlanResourceChange": (r'Re-validating config for "([^"]+)"', r"writeChange: recorded \w+ change for (\S+)$"),
        "ApplyResourceChange": (r"NodeApplyableResourceInstance.execute?\S* ?for (\S+)|apply: (\S+)", r"writeResourceInstanceState: writing state object for (\S+)$"),
    }
    durations = {}
    for call, (begin, finish) in spans.items():
        opened = {}
        for t, e in events:
            m = re.search(begin, e)
            if m:
                opened.setdefault(next(g for g in m.groups() if g), t)
                continue
            m = re.search(finish, e)
            if m and m.group(1) in opened:
                durations.setdefault(call, []).append(t - opened.pop(m.group(1)))
    configure = [t for t, e in events if "NodeApplyableProvider: configuring provider" in e]
    configured = [t for t, e in events if "configuring the nixbuild provider" in e]
    accepted = [t for t, e in events if "gRPC connection accepted" in e]
    reads = [t for t, e in events if e.endswith("GRPCProvider.v6: ReadResource")]
    closes = [t for t, e in events if e.endswith("GRPCProvider.v6: Close")]
    provider = lambda msg: [e for _, e in events if "provider.terraform-provider-nixbuild: " + msg in e]
    connects = provider("connected:")
    handshakes = provider("SSH handshake and login done")
    tcps = provider("TCP connected")
    channels = provider("channel open")
    dones = [e for e in provider("done:") if 'step="check builder"' in e]
    checked = provider("builder checked")

    def med(values):
        values = [float(v) for v in values if v is not None]
        return f"{statistics.median(values):.0f}" if values else "–"

    n = len(reads)
    rows = [
        ("whole run (first to last log line)", f"{end - start:.0f}", ""),
        ("provider processes started", str(len(plugin_starts)), "Terraform starts one per walk (schema, validate, plan/apply)"),
        ("Terraform alone before the first provider process", f"{plugin_starts[0] - start:.0f}" if plugin_starts else "–", ""),
        ("after the last provider process exited", f"{end - plugin_exits[-1]:.0f}" if plugin_exits else "–", ""),
    ]
    if reads:
        first_read = reads[0]
        last_done = max(t for t, e in events if "provider.terraform-provider-nixbuild: done:" in e) if dones else first_read
        rows.append(("first ReadResource to last check done", f"{last_done - first_read:.0f}", f"{n} Reads, at most 10 at a time (Terraform's -parallelism)"))
    rows.append(("provider start to gRPC connection (median)", med(a - b for a, b in zip(accepted, plugin_starts)), "process start, handshake line, Terraform connects"))
    rows.append(("ConfigureProvider", med(b - a for a, b in zip(configure, configured)), ""))
    rows.append(("Close to process exit (median)", med(b - a for a, b in zip(closes, plugin_exits)), ""))
    for call, values in durations.items():
        rows.append((f"gRPC {call} (median per resource)", med(values), f"{len(values)} resources"))
    rows += [
        ("SSH: TCP connect", med(field(e, "tcp_ms") for e in tcps), "per connection"),
        ("SSH: key exchange + host key check", med(field(e, "kex_ms") for e in handshakes), "per connection"),
        ("SSH: public-key login", med(field(e, "auth_ms") for e in handshakes), "per connection"),
        ("SSH: whole connect (pool)", med(field(e, "connect_ms") for e in connects), f"{len(connects)} connections"),
        ("channel open (round trip)", med(field(e, "channel_ms") for e in channels if 'step="check builder"' in e), "per command"),
        ("check command, channel to exit status", med(field(e, "elapsed_ms") for e in dones), f"{len(dones)} commands"),
        ("checks that reused Nix's facts (no nix start)", str(sum(1 for e in checked if field(e, "nix_from_snapshot") == "true")), f"of {len(checked)}"),
    ]
    print(f"\n{title}\n")
    print("| part | ms | note |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")
    # Every remote command, by step: how many, and their time (channel open
    # to exit status) per resource.
    by_step = {}
    for e in provider("done:"):
        step, elapsed = field(e, "step"), field(e, "elapsed_ms")
        if step and elapsed is not None:
            by_step.setdefault(step, []).append(float(elapsed))
    if by_step:
        total = sum(len(v) for v in by_step.values())
        print(f"\nRemote commands of that run: {total}\n")
        print("| step | commands | median ms | sum ms |")
        print("|---|---|---|---|")
        for step, values in by_step.items():
            print(f"| {step} | {len(values)} | {statistics.median(values):.0f} | {sum(values):.0f} |")
    # Inside each command: its steps (src/ssh/steps.rs), timed by when their
    # frame lines reached the provider (they stream as the shell prints
    # them): from `BOUNDARY begin N NAME` to `BOUNDARY end N STATUS`.
    frame = re.compile(r"provider\.terraform-provider-nixbuild: (@nixbuild-[0-9a-f]+) (begin|end) (\d+) ?(.*?): ")
    begun, names, inside = {}, {}, {}
    for t, e in events:
        m = frame.search(e)
        if not m:
            continue
        boundary, kind, n, rest = m.groups()
        if kind == "begin":
            begun[(boundary, n)] = t
            names[(boundary, n)] = rest
        elif (boundary, n) in begun:
            name = names[(boundary, n)]
            inside.setdefault(name, []).append(t - begun.pop((boundary, n)))
    if inside:
        print("\nSteps inside those commands (frame lines as they arrived)\n")
        print("| step | runs | median ms | sum ms |")
        print("|---|---|---|---|")
        for name, values in inside.items():
            print(f"| {name} | {len(values)} | {statistics.median(values):.0f} | {sum(values):.0f} |")


if __name__ == "__main__":
    main()
