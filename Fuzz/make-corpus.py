#!/usr/bin/env python3
"""Writes the seed corpus of the fuzzers under Fuzz/Corpus/<target>/: small valid (and a few
invalid) inputs in each target's input format, so that libFuzzer starts from the shapes the
protocol uses instead of from nothing. Run it again after changing an input format."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"\x37\xfa\x21\x3d"


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None):
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    masked = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = bytes([first, masked | n])
    elif n <= 0xFFFF:
        head = bytes([first, masked | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, masked | 127]) + struct.pack(">Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def deflate(data, window=15, compressor=None):
    """Raw deflate with a sync flush, the 00 00 FF FF tail removed (RFC 7692 §7.2.1)."""
    c = compressor or zlib.compressobj(6, zlib.DEFLATED, -max(window, 9))
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def write(target, name, data):
    folder = os.path.join(HERE, "Corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def frames():
    # [flags: bit0 client, bit1 deflate, bit2 fragments] [limits] [deflate parameters] [seed] wire
    big = 0xFF  # largest frame and message limits, 15-bit client window
    def server(name, wire, flags=0, limits=big, params=0x07, seed=1):
        write("frames", name, bytes([flags, limits, params, seed]) + wire)

    m = KEY
    server("text", frame(1, b"Hello", mask=m))
    server("binary", frame(2, bytes(range(40)), mask=m))
    server("fragmented-text", frame(1, "héllo ".encode(), fin=False, mask=m) + frame(9, b"ping", mask=m)
           + frame(0, "wörld ✓".encode(), mask=m))
    server("utf8-split", frame(1, "✓".encode()[:1], fin=False, mask=m) + frame(0, "✓".encode()[1:], mask=m))
    server("invalid-utf8", frame(1, b"ok \xc3\x28", mask=m))
    server("close", frame(8, struct.pack(">H", 1000) + b"bye", mask=m))
    server("close-empty", frame(8, mask=m))
    server("ping-pong", frame(9, b"are you there", mask=m) + frame(10, b"yes", mask=m))
    server("length-126", frame(2, bytes(300), mask=m), limits=0x0E)
    server("length-127-partial", frame(2, bytes(70000), mask=m)[:400])
    server("too-big", frame(2, bytes(200), mask=m), limits=0x00)
    server("text-then-close", frame(1, b"a", mask=m) + frame(8, struct.pack(">H", 1001), mask=m) + frame(1, b"after", mask=m))
    server("reserved-opcode", frame(3, b"x", mask=m))
    server("unmasked", frame(1, b"x"))
    server("fragments-out", frame(1, b"echo me please", mask=m), flags=4)
    write("frames", "client-text", bytes([1, big, 0x07, 2]) + frame(1, b"from the server") + frame(9, b"p"))
    write("frames", "client-close", bytes([1, big, 0x07, 3]) + frame(8, struct.pack(">H", 4000) + b"app"))
    # permessage-deflate: RSV1 on the first frame of a compressed message.
    text = b'{"event":"tick","symbol":"DPLX","price":101.25}' * 3
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    one, two = deflate(text, compressor=c), deflate(text, compressor=c)
    server("deflate", frame(1, one, rsv=4, mask=m) + frame(1, two, rsv=4, mask=m), flags=2)
    half = len(one) // 2
    server("deflate-fragmented", frame(1, one[:half], fin=False, rsv=4, mask=m) + frame(0, one[half:], mask=m), flags=2)
    server("deflate-no-takeover", frame(2, deflate(bytes(500), window=9), rsv=4, mask=m), flags=2, params=0x01, limits=0x1F)
    write("frames", "client-deflate", bytes([3, big, 0x0F, 4]) + frame(1, deflate(text), rsv=4) + frame(1, b"plain"))


def handshake():
    # [mode: bit0 response, bits1-2 head limit] [deflate configuration] [seed] head
    request = (b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Version: 13\r\n")
    def req(name, extra=b"", mode=6, deflate=0x3F, tail=b"\r\n"):
        write("handshake", name, bytes([mode, deflate, 1]) + request + extra + tail)

    req("request")
    req("request-deflate", b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
    req("request-deflate-params", b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; "
        b"client_max_window_bits=12; server_no_context_takeover; client_no_context_takeover, permessage-deflate\r\n",
        deflate=0xD2)
    req("request-extensions-quoted", b'Sec-WebSocket-Extensions: foo; bar="baz", permessage-deflate;\tx=1\r\n')
    req("request-bare-lf", tail=b"\n")
    req("request-small-limit", mode=0)
    write("handshake", "request-post", bytes([6, 0, 1]) + b"POST / HTTP/1.1\r\nHost: a\r\n\r\n")
    write("handshake", "request-http2", bytes([6, 0, 1]) + b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")
    write("handshake", "request-folded", bytes([6, 0, 1]) + b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n")
    response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n")
    def resp(name, extra=b"", deflate=0x3F):
        write("handshake", name, bytes([7, deflate, 2]) + response + extra + b"\r\n\x81\x02hi")

    resp("response")
    resp("response-deflate", b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=9\r\n",
         deflate=0x4A)
    resp("response-deflate-bare", b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
    write("handshake", "response-refused", bytes([7, 0, 3]) + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n")


def inflate():
    # [deflate parameters] [deflate parameters] [limit] [seed], then messages [length: 2] [kind] payload
    def message(payload, kind=0):
        return struct.pack(">H", len(payload)) + bytes([kind]) + payload

    text = "héllo wörld, permessage-deflate ✓ ".encode() * 8
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    write("inflate", "messages", bytes([0x07, 0x07, 5, 1]) + message(deflate(text, compressor=c))
          + message(deflate(text, compressor=c), kind=0x10) + message(b"\x00"))
    write("inflate", "plain", bytes([0x07, 0x07, 4, 2]) + message(text, kind=1) + message(text, kind=0x21))
    write("inflate", "no-takeover", bytes([0x09, 0x09, 3, 3]) + message(deflate(text, window=9)) + message(deflate(text, window=9)))
    write("inflate", "bomb", bytes([0x07, 0x07, 3, 4]) + message(deflate(bytes(1 << 20))))
    write("inflate", "over-limit", bytes([0x07, 0x07, 2, 5]) + message(deflate(bytes(101))))
    final = zlib.compressobj(6, zlib.DEFLATED, -15)
    ended = final.compress(text) + final.flush(zlib.Z_FINISH)
    write("inflate", "bfinal", bytes([0x07, 0x07, 6, 6]) + message(ended + deflate(b"next stream")))
    stored = b"\x00\x05\x00\xfa\xffhello"
    write("inflate", "stored", bytes([0x07, 0x07, 1, 7]) + message(stored))
    write("inflate", "corrupt", bytes([0x07, 0x07, 5, 8]) + message(deflate(text)[:20] + b"\xff\xff\xff"))


if __name__ == "__main__":
    frames()
    handshake()
    inflate()
