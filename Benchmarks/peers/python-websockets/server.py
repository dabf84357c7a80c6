"""Echo server on Python `websockets` (its asyncio API), for Benchmarks/compare.sh.

Usage: python3 server.py <port> [--deflate]. Listens on 127.0.0.1, prints "PORT <n>", echoes text as
text and binary as binary; --deflate turns on permessage-deflate (websockets' default compression).
"""
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
        pass


async def main():
    ports = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(ports) != 1 or not ports[0].isdigit():
        sys.exit("usage: python3 server.py <port> [--deflate]")
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    compression = "deflate" if "--deflate" in sys.argv else None
    async with serve(echo, "127.0.0.1", int(ports[0]), compression=compression, max_size=2**24,
                     ping_interval=None, backlog=4096) as server:
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await stop


asyncio.run(main())
