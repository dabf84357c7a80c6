import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@Suite(.timeLimit(.minutes(1))) struct ServerClientTests {
    @Test func echoTextBinaryEmptyAndLarge() async throws {
        try await withEchoServer { _, port in
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/echo?x=1")
            let large = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let sent: [WebSocketMessage] = [.text("hello"), .binary([0, 1, 255]), .text(""), .text("héllo ✓ 😀"), .binary(large)]
            var iterator = ws.inbound.makeAsyncIterator()
            for message in sent {
                try await ws.outbound.write(message)
                let echoed = await iterator.next()
                #expect(echoed == message)
            }
            let info = try await ws.outbound.close(code: .normalClosure, reason: "bye")
            #expect(info == CloseInfo(code: .normalClosure, reason: "", wasClean: true))
            #expect(await iterator.next() == nil)
        }
    }

    /// Small frames must not wait for Nagle's algorithm: the server's accepted sockets have
    /// TCP_NODELAY (on Linux inherited from the listening socket, elsewhere set on each).
    @Test func acceptedConnectionsHaveNoDelay() async throws {
        let noDelay = NIOLockedValueBox<SocketOptionValue?>(nil)
        let server = WebSocketServer(configuration: .init(port: 0), handler: .callbacks { ws in
            noDelay.withLockedValue { $0 = try? ws.channel.syncOptions?.getOption(.socketOption(.tcp_nodelay)) }
        })
        let port = try await server.start().port!
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        _ = try await ws.outbound.close()
        #expect(noDelay.withLockedValue { $0 } == 1)
        await server.shutdown()
    }

    @Test func manyMessagesInFlightArriveInOrder() async throws {
        try await withEchoServer { _, port in
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
            let count = 2000
            async let received: [String] = {
                var texts: [String] = []
                for await message in ws.inbound {
                    texts.append(message.text ?? "?")
                    if texts.count == count { break }
                }
                return texts
            }()
            for index in 0..<count { try await ws.outbound.write(.text("message \(index)")) }
            #expect(await received == (0..<count).map { "message \($0)" })
            try await ws.outbound.close()
        }
    }

    @Test func subprotocolSelectionFollowsTheClientsOrder() async throws {
        let configuration = WebSocketServer.Configuration(subprotocols: .supported(["chat", "superchat"]))
        try await withEchoServer(configuration) { _, port in
            let offered = WebSocketClient.Configuration(subprotocols: ["v2.other", "superchat", "chat"])
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: offered)
            #expect(ws.context.subprotocol == "superchat")
            try await ws.outbound.close()

            let none = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
            #expect(none.context.subprotocol == nil)
            try await none.outbound.close()
        }
    }

    @Test func asyncServerHandler() async throws {
        let server = WebSocketServer(configuration: .init(port: 0), handler: .async { inbound, outbound, context in
            try await outbound.write(.text("welcome to \(context.request.target)"))
            for await message in inbound {
                try await outbound.write(.text("got \(message.text ?? "binary")"))
            }
        })
        let port = try await server.start().port!
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/room")
        var iterator = ws.inbound.makeAsyncIterator()
        #expect(await iterator.next()?.text == "welcome to /room")
        try await ws.outbound.write(.text("a"))
        #expect(await iterator.next()?.text == "got a")
        try await ws.outbound.close()
        await server.shutdown()
    }

    @Test func serverHandlerReturningClosesWith1000() async throws {
        let server = WebSocketServer(configuration: .init(port: 0), handler: .async { _, outbound, _ in
            try await outbound.write(.text("one and done"))
        })
        let port = try await server.start().port!
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        var messages: [String] = []
        for await message in ws.inbound { messages.append(message.text ?? "") }
        #expect(messages == ["one and done"])
        #expect(await ws.outbound.closeInfo() == CloseInfo(code: .normalClosure, wasClean: true))
        await server.shutdown()
    }

    @Test func gracefulShutdownSendsGoingAwayToEveryClient() async throws {
        let server = WebSocketServer(configuration: .init(port: 0), handler: .callbacks { _ in })
        let port = try await server.start().port!
        var clients: [WebSocketClientConnection] = []
        for _ in 0..<5 { clients.append(try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")) }
        await server.shutdown()
        for client in clients {
            let info = await client.outbound.closeInfo()
            #expect(info.code == .goingAway)
            #expect(info.reason == "server shutting down")
            #expect(info.wasClean)
        }
        #expect(server.connectionCount == 0)
        // No longer accepting.
        await #expect(throws: (any Error).self) { _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/") }
    }

    @Test func sendAfterCloseThrowsATypedError() async throws {
        try await withEchoServer { _, port in
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
            try await ws.outbound.close()
            await #expect(throws: ConnectionError.notOpen(.closed)) { try await ws.outbound.write(.text("late")) }
        }
    }

    @Test func clientPingGetsPong() async throws {
        try await withEchoServer { _, port in
            let pong = NIOLockedValueBoxPromise()
            try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/") { ws in
                ws.onPong = { ws, payload in
                    pong.succeed(String(buffer: payload))
                    try? ws.close()
                }
                try? ws.sendPing(ByteBuffer(string: "are you there"))
            }
            #expect(try await pong.value() == "are you there")
        }
    }

    @Test func connectionRefusedIsAnError() async throws {
        await #expect(throws: (any Error).self) { _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:1/") }
    }

    @Test func urlParsing() throws {
        let v6 = try WebSocketURL("ws://[::1]:9001/runCase?case=1&agent=duplex")
        #expect(v6.host == "::1" && v6.port == 9001 && v6.target == "/runCase?case=1&agent=duplex")
        #expect(v6.hostHeader == "[::1]:9001")
        let plain = try WebSocketURL("ws://example.com")
        #expect(plain.port == 80 && plain.target == "/" && plain.hostHeader == "example.com")
        let query = try WebSocketURL("wss://example.com?x=1#frag")
        #expect(query.isSecure && query.port == 443 && query.target == "/?x=1")
        #expect(throws: WebSocketClientError.self) { try WebSocketURL("http://example.com/") }
        #expect(throws: WebSocketClientError.self) { try WebSocketURL("ws://example.com:99999/") }
        #expect(throws: WebSocketClientError.self) { try WebSocketURL("ws://[::1/") }
    }
}

/// A one-shot value handed from an event-loop callback to a test.
final class NIOLockedValueBoxPromise: Sendable {
    private let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
    func succeed(_ value: String) { promise.succeed(value) }
    func value() async throws -> String { try await promise.futureResult.get() }
}
