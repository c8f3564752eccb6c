#!/usr/bin/env python3
"""Charts of scripts/bench-soak.sh output: per window, the slowest PUT and the largest server RSS,
one line per run (etcd and census, in the order they ran).

Usage: python3 bench/soak_chart.py OUT.png RUN.txt [LABEL=RUN.txt ...]
A file may hold several runs (bench-soak.sh with ROUNDS > 1); LABEL prefixes their names.
Needs matplotlib (python3 -m pip install matplotlib).
"""

import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIELD = re.compile(r"(\w+)=([^\s]+)")


def runs_of(path, label):
    """Each run in the file: its name and its windows (t_s, max_ms, p999_ms, rss_mb)."""
    runs, current, counts = [], None, {}
    for line in open(path, encoding="utf-8"):
        if not line.startswith("WINDOW"):
            current = None
            continue
        f = dict(FIELD.findall(line))
        t = float(f["t_s"])
        if current is None or t <= current[1][-1][0]:
            system = f["system"]
            counts[system] = counts.get(system, 0) + 1
            name = f"{label}{system} {f['clients']} clients, run {counts[system]}"
            current = (name, [])
            runs.append(current)
        rss = max(int(v) for v in f["rss_kib"].split(",") if v.isdigit()) / 1024
        current[1].append((t, float(f["max_ms"]), float(f["p999_ms"]), rss))
    return runs


def main():
    out, inputs = sys.argv[1], sys.argv[2:]
    runs = []
    for spec in inputs:
        label, _, path = spec.rpartition("=")
        runs += runs_of(path, f"{label} " if label else "")
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, windows in runs:
        t = [w[0] for w in windows]
        style = "--" if "etcd" in name else "-"
        lat.plot(t, [w[1] for w in windows], style, marker="o", label=name)
        mem.plot(t, [w[3] for w in windows], style, marker="o", label=name)
    lat.set(title="slowest PUT per window", xlabel="seconds", ylabel="ms")
    mem.set(title="largest server RSS", xlabel="seconds", ylabel="MiB")
    lat.set_ylim(bottom=0)
    mem.set_ylim(bottom=0)
    lat.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main()
