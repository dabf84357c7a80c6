import Duplex
import NIOCore
import NIOPosix
import Testing

/// The client against servers that answer the opening handshake wrongly, over real sockets.
@Suite(.timeLimit(.minutes(1))) struct ClientHandshakeFailureTests {
    /// A server that answers any request with `response` and then waits.
    final class FixedResponder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let response: String
        init(_ response: String) { self.response = response }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: response)), promise: nil)
        }
    }

    func withFixedServer(_ response: String, _ body: (Int) async throws -> Void) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FixedResponder(response)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do { try await body(channel.localAddress!.port!) } catch { try await channel.close(); throw error }
        try await channel.close()
    }

    func expectFailure(_ response: String, _ check: (ClientHandshakeError) -> Bool) async throws {
        try await withFixedServer(response) { port in
            do {
                _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(subprotocols: ["chat"]))
                Issue.record("connected despite \(response)")
            } catch WebSocketClientError.handshakeFailed(let error) {
                #expect(check(error), "\(error)")
            }
        }
    }

    @Test func wrongAcceptValue() async throws {
        try await expectFailure("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") {
            if case .wrongAccept(_, let received) = $0 { return received == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" }
            return false
        }
    }

    @Test func notSwitchingProtocols() async throws {
        try await expectFailure("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") { $0 == .unexpectedStatus(403, "Forbidden") }
    }

    @Test func malformedResponse() async throws {
        try await withFixedServer("SMTP ready\r\n\r\n") { port in
            await #expect(throws: WebSocketClientError.self) { _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/") }
        }
    }

    @Test func handshakeTimeout() async throws {
        try await withFixedServer("HTTP/1.1 101 Switching Protocols\r\n") { port in  // and never the rest
            let configuration = WebSocketClient.Configuration(handshakeTimeout: .milliseconds(200))
            await #expect(throws: WebSocketClientError.self) {
                _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: configuration)
            }
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct ClientRequestTests {
    @Test func ipv6LiteralPathQueryAndCustomHeaders() async throws {
        let server = WebSocketServer(configuration: .init(host: "::1", port: 0), handler: .callbacks { ws in
            let request = ws.request
            try? ws.send(text: "\(request.target) \(request.headers["Host"] ?? "-") \(request.headers["X-Token"] ?? "-")")
        })
        let port: Int
        do {
            port = try await server.start().port!
        } catch {
            Issue.record("IPv6 loopback unavailable: \(error)")
            return
        }
        let ws = try await WebSocketClient.connect(
            to: "ws://[::1]:\(port)/rooms/a?user=b", configuration: .init(headers: ["X-Token": "secret"]))
        var iterator = ws.inbound.makeAsyncIterator()
        #expect(await iterator.next()?.text == "/rooms/a?user=b [::1]:\(port) secret")
        try await ws.outbound.close()
        await server.shutdown()
    }
}
