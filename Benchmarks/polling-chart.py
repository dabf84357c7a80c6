#!/usr/bin/env python3
"""Draws the chart of `duplex bench polling --json`: delivery latency, bytes on the wire per event and
HTTP requests per event, one bar per transport.

    .build/release/duplex bench polling --json > /tmp/polling.json
    Benchmarks/polling-chart.py /tmp/polling.json Docs/polling.png     # needs matplotlib (pip)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: polling-chart.py RESULTS.json OUT.png")
    with open(sys.argv[1]) as f:
        results = json.load(f)
    names = [r["transport"].replace("short-polling ", "short poll\n") for r in results]
    names = [n.replace("long-polling", "long poll") for n in names]
    colors = ["#2a7" if r["transport"] == "websocket" else "#888" for r in results]
    first = results[0]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))

    ax = axes[0]
    x = range(len(results))
    ax.bar([i - 0.2 for i in x], [r["p50_ms"] for r in results], 0.4, color=colors, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p99_ms"] for r in results], 0.4, color=colors, alpha=0.45, label="p99 (lighter)")
    ax.set_title("delivery latency (ms), p50 and p99")
    ax.set_yscale("log")
    ax.legend()

    for ax, key, title, form in [
        (axes[1], "bytes_per_event", "bytes on the wire per event delivered", "{:.0f}"),
        (axes[2], "requests_per_event", "HTTP requests per event delivered", "{:.3f}"),
    ]:
        values = [r[key] for r in results]
        bars = ax.bar(x, values, color=colors)
        ax.bar_label(bars, [form.format(v) for v in values], fontsize=8)
        ax.set_title(title)

    for ax in axes:
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"One event stream, {first['events']} events of {first.get('size', '?')} bytes to {first['clients']} clients"
        " over loopback: WebSocket push (green) against HTTP polling",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
