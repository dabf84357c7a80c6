"""Client on Python `websockets` for Duplex's interop tests: a scripted exchange with an echo server.

Usage: py_client.py URL [--subprotocol X] [--deflate on|small] [--ca PEM]. Prints "TLS <version>
<alpn> <serial>" for a wss:// URL (trusting only the CA in PEM), "EXT <extensions>" once connected, "OK <kind>" per echoed message and "CLOSE <code> <reason>" at the end; exits 1 with a
message on any mismatch. `--deflate on` offers websockets' default permessage-deflate, `small` offers
no context takeover both ways and 1 KiB / 512-byte windows.
"""
import argparse
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

MESSAGES = [
    ("text", "hello"),
    ("binary", bytes(i % 256 for i in range(70000))),
    ("text", ""),
    ("text", "héllo wörld ✓ 😀"),
    ("text", '{"event":"tick","symbol":"DPLX","price":101.25}\n' * 3000),
]


def fail(why):
    # on stdout, like node_client.js: the Swift test shows the peer's stdout only
    print(f"FAIL {why}", flush=True)
    sys.exit(1)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--subprotocol", action="append", default=[])
    parser.add_argument("--deflate", choices=["on", "small"])
    parser.add_argument("--ca")
    args = parser.parse_args()
    context = None
    if args.ca:
        context = ssl.create_default_context(cafile=args.ca)
        context.set_alpn_protocols(["http/1.1"])
    extensions = None
    if args.deflate == "small":
        extensions = [ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=10, client_max_window_bits=9)]
    compression = "deflate" if args.deflate == "on" else None
    async with connect(args.url, subprotocols=args.subprotocol or None, compression=compression,
                       extensions=extensions, max_size=2**24, ssl=context) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        if tls is not None:
            print(f"TLS {tls.version()} {tls.selected_alpn_protocol()} {tls.getpeercert()['serialNumber']}", flush=True)
        if args.subprotocol and ws.subprotocol not in args.subprotocol:
            fail(f"subprotocol {ws.subprotocol!r}")
        print(f"EXT {ws.response.headers.get('Sec-WebSocket-Extensions', '')}", flush=True)
        for kind, payload in MESSAGES:
            await ws.send(payload)
            echoed = await ws.recv()
            if type(echoed) is not type(payload) or echoed != payload:
                fail(f"{kind}: echoed {type(echoed).__name__} of {len(echoed)}")
            print(f"OK {kind}" + (f" {len(payload)}" if kind == "binary" else ""), flush=True)
        await ws.close(1000, "bye")
        # websockets reports the code and reason the server echoed (Duplex echoes the code only) and the
        # one it sent; print what was sent, and check the handshake completed cleanly.
        received, sent = ws.protocol.close_rcvd, ws.protocol.close_sent
        if received is None or received.code != 1000:
            fail(f"close received {received}")
        print(f"CLOSE {sent.code} {sent.reason}", flush=True)


try:
    asyncio.run(main())
except Exception as error:  # handshake refused, connection closed early, ...
    fail(f"error {type(error).__name__}: {error}")
