"""Prints Benchmarks/compare.sh's results as one Markdown table, with Duplex's ratio to each peer.

Usage: compare-table.py RESULTS.tsv NOTES.txt DURATION IDLE_CONNECTIONS ROUNDS
RESULTS.tsv lines: server, workload, value, unit, server CPU %, bench CPU %, detail; one per run. The
table keeps each server's best run of a workload (the highest rate, the lowest memory).
"""
import sys

WORKLOADS = {
    "small": "small echo, 32 B, C=64, P=16",
    "medium": "medium echo, 16 KiB, C=64, P=4",
    "large": "large echo, 1 MiB, C=8, P=2",
    "connect": "handshakes/s, 32 at a time",
    "idle": "memory per idle connection",
    "small-deflate": "small echo, permessage-deflate",
    "medium-deflate": "medium echo, permessage-deflate",
    "idle-deflate": "memory per idle connection, permessage-deflate",
}


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def efficiency(row):
    """A rate divided by the server's CPU share: messages (or handshakes) per second of server CPU."""
    value, share = number(row[2]), number(row[4])
    if value is None or not share or row[3] == "KiB/conn":
        return None
    return value / (share / 100)


def best_runs(runs):
    """One row per (server, workload): the best run, its detail noting the other runs' figures."""
    grouped = {}
    for run in runs:
        grouped.setdefault((run[0], run[1]), []).append(run)
    rows = []
    for group in grouped.values():
        measured = [r for r in group if number(r[2]) is not None]
        if not measured:
            rows.append(group[0])
            continue
        lower_is_better = measured[0][3] == "KiB/conn"
        best = (min if lower_is_better else max)(measured, key=lambda r: number(r[2]))
        others = [r[2] for r in group if r is not best]
        row = list(best)
        if others:
            row[6] = f"{row[6]}; other runs {', '.join(others)}"
        rows.append(row)
    return rows


def main():
    results_path, notes_path, duration, idle_connections, rounds = sys.argv[1:6]
    runs = [line.rstrip("\n").split("\t") for line in open(results_path) if line.strip()]
    rows = best_runs(runs)
    by_key = {(r[0], r[1]): r for r in rows}
    print(f"Throughput runs of {duration} s, best of {rounds}; idle memory at {idle_connections} connections. "
          "Ratio: Duplex's figure divided by the peer's (for memory, lower is better).\n")
    print("| workload | server | figure | unit | Duplex ÷ it | server CPU | per server CPU-second | Duplex ÷ it, per CPU | bench CPU | detail |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    for workload, title in WORKLOADS.items():
        entries = [r for r in rows if r[1] == workload]
        if not entries:
            continue
        duplex = by_key.get(("duplex", workload))
        duplex_value = number(duplex[2]) if duplex else None
        duplex_efficiency = efficiency(duplex) if duplex else None
        for row in entries:
            server, _, value, unit, server_cpu, bench_cpu, detail = row
            peer_value = number(value)
            ratio = ratio_per_cpu = ""
            if server != "duplex" and duplex_value is not None and peer_value:
                ratio = f"{duplex_value / peer_value:.2f}"
            per_cpu = efficiency(row)
            if server != "duplex" and duplex_efficiency and per_cpu:
                ratio_per_cpu = f"{duplex_efficiency / per_cpu:.2f}"
            shown = f"{peer_value:,.0f}" if peer_value is not None and unit != "KiB/conn" else value
            per_cpu_shown = f"{per_cpu:,.0f}" if per_cpu else ""
            cpu = lambda share: f"{share}%" if share else ""
            print(f"| {title} | {server} | {shown} | {unit} | {ratio} | {cpu(server_cpu)} | {per_cpu_shown} | "
                  f"{ratio_per_cpu} | {cpu(bench_cpu)} | {detail} |")
    for server in ("duplex", "node-ws"):
        plain, deflated = by_key.get((server, "small")), by_key.get((server, "small-deflate"))
        idle, idle_deflated = by_key.get((server, "idle")), by_key.get((server, "idle-deflate"))
        parts = []
        if plain and deflated and number(plain[2]) and number(deflated[2]) is not None:
            parts.append(f"small echo at {number(deflated[2]) / number(plain[2]):.0%} of its speed without")
        medium, medium_deflated = by_key.get((server, "medium")), by_key.get((server, "medium-deflate"))
        if medium and medium_deflated and number(medium[2]) and number(medium_deflated[2]) is not None:
            parts.append(f"medium echo at {number(medium_deflated[2]) / number(medium[2]):.0%}")
        if idle and idle_deflated and number(idle[2]) is not None and number(idle_deflated[2]) is not None:
            parts.append(f"{number(idle_deflated[2]) - number(idle[2]):+.1f} KiB per idle connection")
        if parts:
            print(f"\nCost of permessage-deflate for {server}: " + ", ".join(parts) + ".")
    notes = [line.strip() for line in open(notes_path) if line.strip()]
    if notes:
        print("\nSkipped: " + "; ".join(notes) + ".")


main()
