"""Echo server on Python `websockets` (asyncio API) for Duplex's interop tests.

Binds 127.0.0.1 on --port (0: a free port), prints "PORT <n>" once listening, echoes text as text and
binary as binary, and exits when its standard input closes or on SIGTERM.
"""
import argparse
import asyncio
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # the peer broke the protocol: websockets already closed with 1002/1007/..., no traceback


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--subprotocol", action="append", default=[])
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    stop = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    try:
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(4096) or stop.done() or stop.set_result(None))
    except (AttributeError, PermissionError, ValueError):
        pass  # no pollable stdin (closed, /dev/null, a file): run until SIGTERM
    async with serve(echo, "127.0.0.1", args.port,
                     subprotocols=args.subprotocol or None,
                     compression="deflate" if args.deflate else None,
                     max_size=2**24) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await stop


asyncio.run(main())
