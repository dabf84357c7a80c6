import DuplexTestSupport
import Duplex
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// permessage-deflate over real sockets: negotiation in the handshake, RSV1 on the wire, the
/// per-message choice, a client refusing a response it did not offer, and decompression bombs.
@Suite(.timeLimit(.minutes(1))) struct CompressionTests {
    typealias Configuration = PerMessageDeflate.Configuration

    /// Text that compresses well, and bytes that do not.
    static let text = String(repeating: "{\"event\":\"tick\",\"symbol\":\"DPLX\",\"price\":101.25}\n", count: 2_000)
    static let noise: [UInt8] = {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<50_000).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }()

    @Test(arguments: [
        (Configuration(), Configuration(), "permessage-deflate"),
        (Configuration(serverNoContextTakeover: true, clientNoContextTakeover: true), Configuration(),
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        (Configuration(clientMaxWindowBits: 9), Configuration.lowMemory,
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"),
        (Configuration(serverMaxWindowBits: 8), Configuration(clientMaxWindowBits: 8),
         "permessage-deflate; server_max_window_bits=8"),  // the client keeps to the 8 it offered
    ])
    func duplexClientAndServerAgreeAndEcho(server: Configuration, client: Configuration, agreed: String) async throws {
        try await withEchoServer(.init(compression: server)) { _, port in
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(compression: client))
            #expect(WebSocketExtension.format(ws.context.extensions) == agreed)
            var iterator = ws.inbound.makeAsyncIterator()
            let messages: [WebSocketMessage] = [.text(Self.text), .binary(Self.noise), .text(""), .text("short"), .text(Self.text), .binary([])]
            for message in messages {
                try await ws.outbound.write(message)
                #expect(await iterator.next() == message)
            }
            _ = try await ws.outbound.close()
        }
    }

    @Test func noOfferOrNoServerSupportMeansNoCompression() async throws {
        try await withEchoServer(.init(compression: nil)) { _, port in
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(compression: .init()))
            #expect(ws.context.extensions.isEmpty)
            try await ws.outbound.write(.text(Self.text))
            var iterator = ws.inbound.makeAsyncIterator()
            #expect(await iterator.next() == .text(Self.text))
            _ = try await ws.outbound.close()
        }
        try await withEchoServer(.init(compression: .init())) { _, port in
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
            #expect(ws.context.extensions.isEmpty)
            _ = try await ws.outbound.close()
        }
    }

    /// A raw client offers permessage-deflate, sends one compressed message and reads the frames
    /// the server sends back: compressed (RSV1) by default, plain with `compress: false`.
    @Test func rsv1OnTheWireAndThePerMessageChoice() async throws {
        let server = WebSocketServer(configuration: .init(port: 0, compression: .init()), handler: .callbacks { ws in
            ws.onMessage = { ws, message in
                try? ws.send(message)
                try? ws.send(message, compress: false)
            }
        })
        let port = try await server.start().port!
        defer { Task { await server.shutdown() } }

        let client = try await RawTCPClient.connect(port: port)
        defer { client.close() }
        try await client.send(upgradeRequest(extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
        let codec = try PerMessageDeflate.makeCodec(parameters: .init(), isServer: false)
        let payload = try #require(try codec.compress(ByteBuffer(string: Self.text)))
        #expect(payload.readableBytes < Self.text.utf8.count / 20)
        try await client.send(clientFrame(rsv: 0b100, opcode: 0x1, payload: payload))

        let received = try await client.waitUntil { bytes in ((try? framesAfterHead(bytes))?.frames.count ?? 0) >= 2 }
        let (head, frames) = try framesAfterHead(received)
        #expect(head.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        #expect(frames[0].rsv == 0b100)
        #expect(frames[0].payload.readableBytes < Self.text.utf8.count / 20)
        var inflated = ByteBuffer()
        try codec.decompress(frames[0].payload, isFinal: true, into: &inflated, limit: 1 << 20)
        #expect(String(buffer: inflated) == Self.text)
        #expect(frames[1].rsv == 0)
        #expect(String(buffer: frames[1].payload) == Self.text)
    }

    /// A server that accepts the handshake with extension parameters the client never offered.
    final class BadExtensionServer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let extensions: String
        let afterHandshake = NIOLockedValueBox(ByteBuffer())
        let sentResponse = NIOLockedValueBox(false)
        init(extensions: String) { self.extensions = extensions }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            if sentResponse.withLockedValue({ $0 }) {
                afterHandshake.withLockedValue { _ = $0.writeBuffer(&bytes) }
                return
            }
            let request = String(buffer: bytes)
            guard let keyLine = request.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("sec-websocket-key:") }) else { return }
            let key = keyLine.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
            let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                "Sec-WebSocket-Accept: \(WebSocketAccept.value(forKey: key))\r\nSec-WebSocket-Extensions: \(extensions)\r\n\r\n"
            sentResponse.withLockedValue { $0 = true }
            context.writeAndFlush(NIOAny(ByteBuffer(string: response)), promise: nil)
        }
    }

    @Test(arguments: [
        ("permessage-deflate; server_max_window_bits=12", PerMessageDeflate.NegotiationError.serverMaxWindowBitsTooLarge(requested: 10, received: 12)),
        ("permessage-deflate; server_max_window_bits=10; client_max_window_bits=11", .clientMaxWindowBitsTooLarge(offered: 10, received: 11)),
        ("permessage-deflate; mystery", .unknownParameter("mystery")),
        ("permessage-deflate; server_no_context_takeover=1", .invalidParameterValue(name: "server_no_context_takeover", value: "1")),
        ("permessage-deflate, permessage-deflate", .repeatedExtension),
    ])
    func clientFailsAResponseItDidNotOfferWith1010(extensions: String, expected: PerMessageDeflate.NegotiationError) async throws {
        let handler = BadExtensionServer(extensions: extensions)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        let offer = Configuration(serverMaxWindowBits: 10, clientMaxWindowBits: 10)
        do {
            _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(channel.localAddress!.port!)/",
                                                  configuration: .init(compression: offer))
            Issue.record("connected despite \(extensions)")
        } catch WebSocketClientError.extensionNegotiationFailed(let error) {
            #expect(error == expected)
        }
        // The client said why before closing: a masked close frame with 1010 and the reason.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        var frames: [Frame] = []
        while frames.isEmpty, clock.now < deadline {
            var bytes = handler.afterHandshake.withLockedValue { $0 }
            var decoder = FrameDecoder(expectsMaskedFrames: true)
            if case .frame(let frame) = try decoder.next(from: &bytes) { frames.append(frame) }
            try await Task.sleep(for: .milliseconds(5))
        }
        let close = try #require(frames.first)
        #expect(close.opcode == .close)
        #expect(close.payload.getInteger(at: close.payload.readerIndex, as: UInt16.self) == 1010)
        #expect(String(buffer: close.payload.getSlice(at: close.payload.readerIndex + 2, length: close.payload.readableBytes - 2)!)
            == expected.description)
    }

    /// A decompression bomb against `duplex serve` in its own process: 1 GiB of zeros compressed
    /// to about 1 MiB, sent as fragments of 64 MiB each. The server, limited to 1 MiB messages,
    /// must close with 1009 while inflating the first fragment, and its peak memory must stay far
    /// below one fragment's inflated size.
    @Test func decompressionBombIsClosedWith1009InBoundedMemory() async throws {
        let (process, firstLine) = try await ServeProcess.launch(
            ["serve", "--port", "0", "--max-message-size", "\(1 << 20)", "--log-level", "error"])
        defer { if process.isRunning { process.terminate() } }
        let port = try #require(ServeProcess.port(in: firstLine))
        let baseline = try memoryStatus(of: process.processIdentifier)

        // 1 MiB of zeros deflated, with the sync-flush tail kept so that copies can follow each other.
        let codec = try PerMessageDeflate.makeCodec(parameters: .init(), isServer: false, configuration: .init(minimumSize: 0))
        var megabyte = try #require(try codec.compress(ByteBuffer(repeating: 0, count: 1 << 20)))
        megabyte.writeBytes([0x00, 0x00, 0xFF, 0xFF])
        var fragment = ByteBuffer()
        for _ in 0..<64 { fragment.writeImmutableBuffer(megabyte) }
        #expect(fragment.readableBytes < 200_000)

        let client = try await RawTCPClient.connect(port: port)
        defer { client.close() }
        try await client.send(upgradeRequest(extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        for index in 0..<16 {
            let frame = clientFrame(fin: index == 15, rsv: index == 0 ? 0b100 : 0, opcode: index == 0 ? 0x2 : 0x0, payload: fragment)
            do { try await client.send(frame) } catch { break }  // the server may already have closed
        }
        let received = try await client.receivedUntilClosed(timeout: .seconds(20))
        let (head, frames) = try framesAfterHead(received)
        #expect(head.contains("permessage-deflate"))
        let close = try #require(frames.last)
        #expect(close.opcode == .close)
        #expect(close.payload.getInteger(at: close.payload.readerIndex, as: UInt16.self) == 1009)

        let after = try memoryStatus(of: process.processIdentifier)
        let growth = after.peakKiB - baseline.residentKiB
        #expect(growth < 16 * 1024, "server peak memory grew by \(growth) KiB for a 1 GiB bomb")

        // The server is still serving.
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(compression: .init()))
        try await ws.outbound.write(.text(Self.text))
        var iterator = ws.inbound.makeAsyncIterator()
        #expect(await iterator.next() == .text(Self.text))
        _ = try await ws.outbound.close()
    }

    /// VmRSS and VmHWM (peak) of a process, from /proc.
    func memoryStatus(of pid: Int32) throws -> (residentKiB: Int, peakKiB: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func value(_ name: String) throws -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
                  let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
            else { throw TestFailure("no \(name) in /proc/\(pid)/status") }
            return kib
        }
        return (try value("VmRSS"), try value("VmHWM"))
    }
}
