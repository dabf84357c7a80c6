import Duplex
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The server seen from a raw socket: exact bytes for handshakes, refusals and failures.
@Suite(.timeLimit(.minutes(1))) struct WireTests {
    @Test func handshakeResponseIsExact() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(upgradeRequest())
            let response = String(buffer: try await client.waitFor(bytes: 100))
            #expect(response.statusLine == "HTTP/1.1 101 Switching Protocols")
            #expect(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
            #expect(response.lowercased().contains("upgrade: websocket\r\n"))
            #expect(!response.lowercased().contains("sec-websocket-protocol"))
            client.close()
        }
    }

    @Test func firstFrameInTheSamePacketAsTheHandshake() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            var bytes = ByteBuffer(string: upgradeRequest())
            bytes.writeImmutableBuffer(clientFrame(opcode: 1, payload: Array("early".utf8)))
            try await client.send(bytes)
            let echo: [UInt8] = [0x81, 0x05] + Array("early".utf8)
            let all = try await client.waitUntil { $0.readableBytesView.suffix(7).elementsEqual(echo) }
            #expect(String(buffer: all).hasPrefix("HTTP/1.1 101 "))
            client.close()
        }
    }

    /// One callback's replies, written in one flush, mix the three ways a frame goes to the channel:
    /// copied into the output buffer (up to 512 bytes), a large payload with its header written in
    /// front of it (the received message, echoed), and a large one with no room there (a new
    /// buffer, its header in the output buffer). They reach the wire whole and in the order sent.
    /// (The echo shares its storage with the message the callback holds, so its header goes beside
    /// it; the last large one has room in front and no other holder, so its header goes there.)
    @Test func repliesOfEveryKindKeepTheirOrder() async throws {
        let received = ByteBuffer(bytes: (0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try await withEchoServer(onMessage: { ws, message in
            try? ws.send(text: "first")
            try? ws.send(message)
            try? ws.send(binary: ByteBuffer(repeating: 0xAB, count: 3000))
            try? ws.send(text: "between")
            try? ws.send(binary: ByteBuffer(repeating: 0xCD, count: 700))
            var roomInFront = ByteBuffer()
            roomInFront.reserveCapacity(FrameHeader.maxEncodedSize + 1000)
            roomInFront.moveWriterIndex(to: FrameHeader.maxEncodedSize)
            roomInFront.moveReaderIndex(to: FrameHeader.maxEncodedSize)
            roomInFront.writeRepeatingByte(0xEF, count: 1000)
            try? ws.send(binary: roomInFront)
            try? ws.send(text: "last")
        }) { _, port in
            let client = try await RawTCPClient.connect(port: port)
            var bytes = ByteBuffer(string: upgradeRequest())
            bytes.writeImmutableBuffer(clientFrame(opcode: 2, payload: received))
            try await client.send(bytes)
            let all = try await client.waitUntil { ((try? framesAfterHead($0).frames.count) ?? 0) >= 7 }
            let frames = try framesAfterHead(all).frames
            #expect(frames.map(\.opcode) == [.text, .binary, .binary, .text, .binary, .binary, .text])
            #expect(frames.map(\.payload) == [ByteBuffer(string: "first"), received, ByteBuffer(repeating: 0xAB, count: 3000),
                                               ByteBuffer(string: "between"), ByteBuffer(repeating: 0xCD, count: 700),
                                               ByteBuffer(repeating: 0xEF, count: 1000), ByteBuffer(string: "last")])
            client.close()
        }
    }

    @Test func plainHTTPRequestGets426() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let response = String(buffer: try await client.receivedUntilClosed())
            #expect(response.statusLine == "HTTP/1.1 426 Upgrade Required")
        }
    }

    @Test func wrongVersionGets426WithSupportedVersion() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(upgradeRequest(version: "8"))
            let response = String(buffer: try await client.receivedUntilClosed())
            #expect(response.statusLine == "HTTP/1.1 426 Upgrade Required")
            #expect(response.contains("Sec-WebSocket-Version: 13\r\n"))
        }
    }

    @Test func badKeyGets400() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(upgradeRequest().replacingOccurrences(of: "dGhlIHNhbXBsZSBub25jZQ==", with: "c2hvcnQ="))
            let response = String(buffer: try await client.receivedUntilClosed())
            #expect(response.statusLine == "HTTP/1.1 400 Bad Request")
        }
    }

    @Test func oversizedHandshakeGets431() async throws {
        try await withEchoServer(.init(maxHandshakeSize: 1024)) { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(upgradeRequest(extraHeaders: "X-Padding: \(String(repeating: "a", count: 2000))\r\n"))
            let response = String(buffer: try await client.receivedUntilClosed())
            #expect(response.statusLine.hasPrefix("HTTP/1.1 431"))
        }
    }

    @Test func handshakeTimeoutDropsASilentClient() async throws {
        try await withEchoServer(.init(handshakeTimeout: .seconds(1))) { _, port in
            let client = try await RawTCPClient.connect(port: port)
            do {
                try await client.send("GET / HTTP/1.1\r\n")  // and nothing more
            } catch ChannelError.ioOnClosedChannel {
                // On a loaded machine the server may have dropped us before the line went out.
            }
            let start = ContinuousClock.now
            _ = try await client.receivedUntilClosed(timeout: .seconds(10))
            #expect(ContinuousClock.now - start < .seconds(8))
        }
    }

    @Test func unmaskedClientFrameIsAProtocolError() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(upgradeRequest())
            let handshake = try await client.waitFor(bytes: 100).readableBytes
            try await client.send(clientFrame(opcode: 1, payload: Array("hi".utf8), masked: false))
            var all = try await client.receivedUntilClosed()
            all.moveReaderIndex(forwardBy: handshake)
            #expect(all.readInteger(as: UInt8.self) == 0x88)
            let length = Int(all.readInteger(as: UInt8.self)!)
            #expect(all.readInteger(as: UInt16.self) == 1002)
            #expect(String(buffer: all.readSlice(length: length - 2)!) == "client frame not masked")
        }
    }

    @Test func serverClosesTCPAfterTheCloseHandshake() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(upgradeRequest())
            let handshake = try await client.waitFor(bytes: 100).readableBytes
            try await client.send(clientFrame(opcode: 8, payload: [0x03, 0xE8] + Array("done".utf8)))
            var all = try await client.receivedUntilClosed()  // the server closes TCP first
            all.moveReaderIndex(forwardBy: handshake)
            #expect(Array(all.readableBytesView) == [0x88, 0x02, 0x03, 0xE8])
        }
    }

    @Test func closeTimeoutEndsAClientThatNeverAnswers() async throws {
        let closing = WebSocketServer.Configuration(port: 0, connection: .init(closeTimeout: .milliseconds(200)))
        let server = WebSocketServer(configuration: closing, handler: .callbacks { ws in
            ws.onMessage = { ws, _ in try? ws.close(code: .policyViolation, reason: "go") }
        })
        let port = try await server.start().port!
        let client = try await RawTCPClient.connect(port: port)
        try await client.send(upgradeRequest())
        _ = try await client.waitFor(bytes: 100)
        try await client.send(clientFrame(opcode: 1, payload: [0x61]))
        let clock = ContinuousClock()
        let start = clock.now
        let all = try await client.receivedUntilClosed(timeout: .seconds(3))
        #expect(clock.now - start < .seconds(2))
        #expect(String(buffer: all).hasSuffix("go"))
        await server.shutdown()
    }
}
