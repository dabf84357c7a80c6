import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A TCP client that sends raw bytes and collects whatever comes back, for byte-level checks.
final class RawTCPClient: Sendable {
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox(ByteBuffer())
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.withLockedValue { _ = $0.writeBuffer(&bytes) }
        }
    }

    let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects to the loopback server on `port` from `localAddress` (any 127.x.y.z works on Linux).
    static func connect(port: Int, from localAddress: String = "127.0.0.1") async throws -> RawTCPClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawTCPClient(channel: channel, collector: collector)
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    func send(_ text: String) async throws {
        try await send(ByteBuffer(string: text))
    }

    var received: ByteBuffer { collector.received.withLockedValue { $0 } }

    /// Waits until the peer closes the connection (at most `timeout`) and returns everything received.
    func receivedUntilClosed(timeout: Duration = .seconds(5)) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await self.channel.closeFuture.get(); return true }
            group.addTask { try await Task.sleep(for: timeout); return false }
            let closed = try await group.next()!
            group.cancelAll()
            if !closed { throw TestFailure("peer did not close within \(timeout)") }
            return self.received
        }
    }

    /// Waits until at least `count` bytes arrived.
    func waitFor(bytes count: Int, timeout: Duration = .seconds(5)) async throws -> ByteBuffer {
        try await waitUntil(timeout: timeout) { $0.readableBytes >= count }
    }

    /// Waits until what arrived satisfies `condition`.
    func waitUntil(timeout: Duration = .seconds(5), _ condition: (ByteBuffer) -> Bool) async throws -> ByteBuffer {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !condition(received) {
            if clock.now > deadline { throw TestFailure("condition not met; got \(received.readableBytes) bytes") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return received
    }

    func close() { channel.close(promise: nil) }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A valid opening request for `path`.
func upgradeRequest(path: String = "/", extraHeaders: String = "", version: String = "13") -> String {
    "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: \(version)\r\n\(extraHeaders)\r\n"
}

/// A masked client frame in wire form.
func clientFrame(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, payload: [UInt8], masked: Bool = true) -> ByteBuffer {
    clientFrame(fin: fin, rsv: rsv, opcode: opcode, payload: ByteBuffer(bytes: payload), masked: masked)
}

/// A masked client frame in wire form.
func clientFrame(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, payload: ByteBuffer, masked: Bool = true) -> ByteBuffer {
    var buffer = ByteBuffer()
    let key = MaskingKey(0x11, 0x22, 0x33, 0x44)
    FrameHeader(fin: fin, rsv: rsv, opcode: Opcode(rawValue: opcode)!, maskingKey: masked ? key : nil, payloadLength: payload.readableBytes)
        .write(into: &buffer)
    var body = payload
    if masked { body.applyMask(key) }
    buffer.writeBuffer(&body)
    return buffer
}

/// Starts an echo server on a free port (callback API) and stops it when `body` returns. `onMessage`
/// replaces the echo.
func withEchoServer<T>(_ configuration: WebSocketServer.Configuration = .init(port: 0),
                       onMessage: @escaping @Sendable (WebSocketConnection, WebSocketMessage) -> Void = { ws, message in try? ws.send(message) },
                       _ body: (WebSocketServer, Int) async throws -> T) async throws -> T {
    var configuration = configuration
    configuration.port = 0
    let server = WebSocketServer(configuration: configuration, handler: .callbacks { ws in
        ws.onMessage = onMessage
    })
    let address = try await server.start()
    do {
        let result = try await body(server, address.port!)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

/// The whole frames in `bytes` after an HTTP head (a server's unmasked frames, or a client's masked
/// ones, unmasked), and the head.
func framesAfterHead(_ bytes: ByteBuffer, masked: Bool = false) throws -> (head: String, frames: [Frame]) {
    let text = String(decoding: bytes.readableBytesView, as: UTF8.self)
    guard let end = text.utf8.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestFailure("no HTTP head in \(text.prefix(200))") }
    let headLength = text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound)
    var rest = bytes.getSlice(at: bytes.readerIndex + headLength, length: bytes.readableBytes - headLength)!
    var decoder = FrameDecoder(expectsMaskedFrames: masked, allowedReservedBits: 0b100)
    var frames: [Frame] = []
    while let output = try decoder.next(from: &rest) {
        if case .frame(let frame) = output { frames.append(frame) }
    }
    return (String(text.utf8.prefix(headLength))!, frames)
}

extension String {
    /// The HTTP status line of a raw response.
    var statusLine: Substring { self.prefix { $0 != "\r\n" } }
}
