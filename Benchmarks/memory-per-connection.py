#!/usr/bin/env python3
"""Resident memory per open WebSocket connection of a server process.

Starts the server command given after `--` (it must print a ws:// URL on its first line, as
`duplex serve --port 0` does), opens N connections with Python `websockets` (compression on or off),
sends one message on each so that codec state is allocated, and reports the server's VmRSS growth
per connection. Run it against a release build:

    swift build -c release
    Benchmarks/memory-per-connection.py --connections 1000 --deflate -- \
        .build/release/duplex serve --port 0 --max-connections-per-address 2000
"""
import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys

from websockets.asyncio.client import connect


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--message-size", type=int, default=1024)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections * 2 + 100)), hard))

    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        url = re.search(r"ws://\S+", first).group(0)
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        payload = ("duplex " * (args.message_size // 7 + 1))[: args.message_size]
        sockets = []
        for _ in range(args.connections):
            ws = await connect(url, compression="deflate" if args.deflate else None, max_size=2**24)
            sockets.append(ws)
        await asyncio.gather(*(ws.send(payload) for ws in sockets))
        await asyncio.gather(*(ws.recv() for ws in sockets))
        await asyncio.sleep(0.5)
        after = rss_kib(server.pid)
        negotiated = sockets[0].response.headers.get("Sec-WebSocket-Extensions", "none")
        per = (after - before) / args.connections
        print(f"connections={args.connections} extensions={negotiated!r}")
        print(f"rss_before_kib={before} rss_after_kib={after} per_connection_kib={per:.1f}")
        await asyncio.gather(*(ws.close() for ws in sockets))
    finally:
        server.terminate()
        server.wait(timeout=10)


asyncio.run(main())
