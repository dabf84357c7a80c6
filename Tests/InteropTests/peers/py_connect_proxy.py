"""A minimal HTTP CONNECT proxy for Duplex's proxy tests (asyncio, standard library only).

Usage: py_connect_proxy.py [--require AUTHORIZATION]. Prints "PORT <n>" once listening and
"CONNECT <authority> <auth>" for each tunnel request; answers 407 when --require is given and the
request's Proxy-Authorization differs, 405 for any other method; otherwise connects to the
authority, answers 200 and relays bytes both ways. Stops at end of standard input.
"""
import argparse
import asyncio
import sys


async def relay(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(reader, writer, required):
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    method, authority, _ = head[0].split(" ", 2)
    fields = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip() for line in head[1:] if ":" in line}
    auth = fields.get("proxy-authorization", "-")
    print(f"CONNECT {authority} {auth}" if method == "CONNECT" else f"{method} {authority}", flush=True)
    if method != "CONNECT":
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        return writer.close()
    if required and auth != required:
        writer.write(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n')
        return writer.close()
    host, port = authority.rsplit(":", 1)
    upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port))
    writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(relay(reader, upstream_writer), relay(upstream_reader, writer))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--require")
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.require), "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main())
