@testable import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Every denial-of-service limit over real sockets: the bad client, the exact refusal, and a
/// well-behaved client that keeps exchanging messages meanwhile.
@Suite(.timeLimit(.minutes(1))) struct LimitsTests {
    func server(_ limits: ServerLimits, handshakeTimeout: TimeAmount = .seconds(10), connection: Connection.Configuration = .init(),
                handler: WebSocketServer.Handler? = nil) async throws -> (WebSocketServer, Int) {
        let server = WebSocketServer(
            configuration: .init(port: 0, connection: connection, handshakeTimeout: handshakeTimeout, limits: limits),
            handler: handler ?? .callbacks { ws in ws.onMessage = { ws, message in try? ws.send(message) } })
        return (server, try await server.start().port!)
    }

    /// A well-behaved client: sends a message and expects its echo.
    final class Talker {
        let ws: WebSocketClientConnection
        var iterator: WebSocketInbound.AsyncIterator

        init(_ ws: WebSocketClientConnection) {
            self.ws = ws
            iterator = ws.inbound.makeAsyncIterator()
        }

        static func connect(port: Int) async throws -> Talker {
            Talker(try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/"))
        }

        func exchange(count: Int, tag: String) async throws {
            for index in 0..<count {
                try await ws.outbound.write(.text("\(tag) \(index)"))
                #expect(await iterator.next() == .text("\(tag) \(index)"))
            }
        }
    }

    /// A raw TCP connection from `localAddress` (any 127.x.y.z works on Linux loopback).
    func rawConnection(port: Int, from localAddress: String) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
            .connect(host: "127.0.0.1", port: port).get()
    }

    @Test func perAddressLimitAnswers429WithRetryAfterAndFreesOnClose() async throws {
        let (server, port) = try await server(ServerLimits(maxConnectionsPerAddress: 3, retryAfter: .seconds(7)))
        var clients: [Talker] = []
        for _ in 0..<3 { clients.append(try await Talker.connect(port: port)) }

        let raw = try await RawTCPClient.connect(port: port)
        try await raw.send(upgradeRequest())
        let response = String(buffer: try await raw.receivedUntilClosed())
        #expect(response.statusLine == "HTTP/1.1 429 Too Many Requests")
        #expect(response.contains("\r\nRetry-After: 7\r\n"))
        #expect(response.hasSuffix("too many connections from 127.0.0.1\n"))
        #expect(server.connectionCount >= 3)

        // The three admitted ones still work; closing one makes room.
        try await clients[0].exchange(count: 3, tag: "first")
        _ = try await clients[2].ws.outbound.close()
        try await Task.sleep(for: .milliseconds(100))
        let again = try await Talker.connect(port: port)
        try await again.exchange(count: 3, tag: "again")
        await server.shutdown()
    }

    @Test func totalLimitAnswers503() async throws {
        let (server, port) = try await server(ServerLimits(maxConnections: 2))
        let first = try await Talker.connect(port: port)
        _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        do {
            _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
            Issue.record("a third connection was accepted")
        } catch WebSocketClientError.handshakeFailed(.unexpectedStatus(let status, _)) {
            #expect(status == 503)
        }
        try await first.exchange(count: 3, tag: "first")
        await server.shutdown()
    }

    /// One address (127.0.0.2) opens 300 connections that send half a request and stop (slowloris);
    /// a client on 127.0.0.1 keeps exchanging messages and a new one connects, and the half-open
    /// ones are dropped at the handshake timeout.
    @Test func halfFinishedHandshakesFromOneAddressDoNotStarveOthers() async throws {
        let (server, port) = try await server(ServerLimits(maxConnectionsPerAddress: 256), handshakeTimeout: .seconds(10))
        let good = try await Talker.connect(port: port)
        var attackers: [any Channel] = []
        let start = ContinuousClock.now
        for _ in 0..<300 {
            let channel = try await rawConnection(port: port, from: "127.0.0.2")
            try await channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web")).get()
            attackers.append(channel)
        }
        try await good.exchange(count: 50, tag: "during")
        let newcomer = try await Talker.connect(port: port)
        try await newcomer.exchange(count: 5, tag: "newcomer")
        // Until the handshake timeout the half-open ones are all held (on a machine so loaded that
        // the first ones already timed out, the count says nothing).
        if ContinuousClock.now - start < .seconds(9) {
            #expect(server.connectionCount == 302, "the half-open ones are held until the handshake timeout")
        }

        // All of them are gone after the handshake timeout.
        for channel in attackers { try await channel.closeFuture.get() }
        try await good.exchange(count: 5, tag: "after")
        #expect(server.connectionCount == 2)
        await server.shutdown()
    }

    @Test func messageRateClosesWith1008AndDeliversWhatCameWithinIt() async throws {
        let delivered = NIOLockedValueBox(0)
        let (server, port) = try await server(ServerLimits(messageRate: RateLimit(perSecond: 0.1, burst: 10)),
                                              handler: .callbacks { ws in
                                                  ws.onMessage = { ws, message in
                                                      delivered.withLockedValue { $0 += 1 }
                                                      try? ws.send(message)
                                                  }
                                              })
        let good = try await Talker.connect(port: port)
        let flooder = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        for index in 0..<50 { try? await flooder.outbound.write(.text("flood \(index)")) }
        let info = await flooder.outbound.closeInfo()
        #expect(info.code == .policyViolation)
        #expect(info.reason == "message rate exceeded")
        var echoes = 0
        for await _ in flooder.inbound { echoes += 1 }
        #expect(echoes == 10)
        try await good.exchange(count: 5, tag: "good")  // its own bucket is untouched
        #expect(delivered.withLockedValue { $0 } == 15)
        await server.shutdown()
    }

    @Test func byteRateClosesWith1008() async throws {
        let (server, port) = try await server(ServerLimits(messageRate: nil, byteRate: RateLimit(perSecond: 10_000, burst: 20_000)))
        let good = try await Talker.connect(port: port)
        let flooder = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        for _ in 0..<10 { try? await flooder.outbound.write(.binary(ByteBuffer(repeating: 7, count: 5_000))) }
        let info = await flooder.outbound.closeInfo()
        #expect(info.code == .policyViolation)
        #expect(info.reason == "byte rate exceeded")
        try await good.exchange(count: 5, tag: "good")
        await server.shutdown()
    }

    /// A peer that never reads while the application keeps sending: the send that would pass the
    /// limit throws and the connection is closed, with the queue never past the limit.
    @Test func slowConsumerIsClosedInsteadOfBufferingWithoutBound() async throws {
        let outcome = NIOLockedValueBox<(sent: Int, maxBuffered: Int, error: ConnectionError?)>((0, 0, nil))
        let limit = 1 << 20
        let (server, port) = try await server(ServerLimits(maxBufferedBytes: limit), handler: .callbacks { ws in
            guard ws.request.target == "/firehose" else {
                ws.onMessage = { ws, message in try? ws.send(message) }
                return
            }
            let chunk = ByteBuffer(repeating: 1, count: 64 * 1024)
            func pump() {
                for _ in 0..<64 {
                    do {
                        try ws.send(.binary(chunk))
                        outcome.withLockedValue { $0.sent += 1; $0.maxBuffered = max($0.maxBuffered, ws.bufferedAmount) }
                    } catch {
                        outcome.withLockedValue { $0.error = error }
                        return
                    }
                }
                ws.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(1)) { pump() }
            }
            pump()
        })
        let good = try await Talker.connect(port: port)
        // A client that reads nothing: no autoRead, a small receive buffer.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: upgradeRequest(path: "/firehose"))).get()
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while outcome.withLockedValue({ $0.error == nil }), clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let (sent, maxBuffered, error) = outcome.withLockedValue { $0 }
        #expect(error == .bufferLimitExceeded(limit: limit))
        #expect(maxBuffered <= limit)
        #expect(sent > 0)
        try await good.exchange(count: 5, tag: "good")
        channel.close(promise: nil)
        await server.shutdown()
    }

    /// Replies sent from `onMessage` wait in the protocol core until the read's events are handled
    /// (so that each goes to the socket as one buffer): they still count in `bufferedAmount` at
    /// once, and the slow-consumer limit still stops a callback that sends without end.
    @Test func repliesSentDuringAReadCountAtOnceAndMeetTheSlowConsumerLimit() async throws {
        let outcome = NIOLockedValueBox<(growth: [Int], maxBuffered: Int, error: ConnectionError?)>(([], 0, nil))
        let limit = 1 << 20
        let (server, port) = try await server(ServerLimits(maxBufferedBytes: limit), handler: .callbacks { ws in
            ws.onMessage = { ws, _ in
                let chunk = ByteBuffer(repeating: 1, count: 64 * 1024)
                while true {
                    let before = ws.bufferedAmount
                    do throws(ConnectionError) {
                        try ws.send(.binary(chunk))
                    } catch {
                        outcome.withLockedValue { $0.error = error }
                        return
                    }
                    outcome.withLockedValue {
                        $0.growth.append(ws.bufferedAmount - before)
                        $0.maxBuffered = max($0.maxBuffered, ws.bufferedAmount)
                    }
                }
            }
        })
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
            .connect(host: "127.0.0.1", port: port).get()
        var request = ByteBuffer(string: upgradeRequest())
        request.writeImmutableBuffer(clientFrame(opcode: 2, payload: [7]))
        try await channel.writeAndFlush(request).get()
        let deadline = ContinuousClock.now + .seconds(10)
        while outcome.withLockedValue({ $0.error == nil }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let (growth, maxBuffered, error) = outcome.withLockedValue { $0 }
        #expect(error == .bufferLimitExceeded(limit: limit))
        // Each send adds its whole frame: a 10-byte header and 64 KiB.
        #expect(growth.count == limit / (64 * 1024 + 10))
        #expect(growth.allSatisfy { $0 == 64 * 1024 + 10 })
        #expect(maxBuffered <= limit)
        channel.close(promise: nil)
        await server.shutdown()
    }

    @Test func idleConnectionIsClosedWith1001AndABusyOneIsNot() async throws {
        let (server, port) = try await server(ServerLimits(idleTimeout: .seconds(2)))
        let idle = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        let busy = try await Talker.connect(port: port)
        let start = ContinuousClock.now
        async let closed = (idle.outbound.closeInfo(), ContinuousClock.now - start)
        // Busy for twice the idle timeout, a message every 200 ms: never closed.
        for index in 0..<20 {
            try await busy.exchange(count: 1, tag: "busy \(index)")
            try await Task.sleep(for: .milliseconds(200))
        }
        let (info, after) = await closed
        #expect(info.code == .goingAway)
        #expect(info.reason == "idle timeout")
        #expect(after < .seconds(6))
        _ = try await busy.ws.outbound.close()
        await server.shutdown()
    }

    /// The close frame a raw client got: code and reason.
    func closeFrame(of raw: RawTCPClient) async throws -> (code: UInt16?, reason: String) {
        let bytes = try await raw.receivedUntilClosed()
        let close = try #require(try framesAfterHead(bytes).frames.last { $0.header.opcode == .close })
        var payload = close.payload
        return (payload.readInteger(as: UInt16.self), String(buffer: payload))
    }

    @Test func oversizedFrameAndMessageAreClosedWith1009() async throws {
        let (server, port) = try await server(ServerLimits(), connection: .init(maxFrameSize: 1_000, maxMessageSize: 4_000))
        let good = try await Talker.connect(port: port)

        let bigFrame = try await RawTCPClient.connect(port: port)
        try await bigFrame.send(upgradeRequest())
        try await bigFrame.send(clientFrame(opcode: 2, payload: [UInt8](repeating: 1, count: 1_001)))
        let frameClose = try await closeFrame(of: bigFrame)
        #expect(frameClose.code == 1009)
        #expect(frameClose.reason == "frame of 1001 bytes exceeds limit 1000")

        // Five fragments of 1,000 bytes: each frame fits, the message does not.
        let bigMessage = try await RawTCPClient.connect(port: port)
        try await bigMessage.send(upgradeRequest())
        for index in 0..<5 {
            try await bigMessage.send(clientFrame(fin: index == 4, opcode: index == 0 ? 2 : 0, payload: [UInt8](repeating: 2, count: 1_000)))
        }
        let messageClose = try await closeFrame(of: bigMessage)
        #expect(messageClose.code == 1009)
        #expect(messageClose.reason == "message exceeds limit of 4000 bytes")

        try await good.exchange(count: 5, tag: "good")
        await server.shutdown()
    }

    @Test func clientAddressKeysIPv4AndIPv6Prefix() throws {
        func key(_ ip: String) throws -> ClientAddressKey? { ClientAddressKey(try SocketAddress(ipAddress: ip, port: 443)) }
        #expect(try key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"))
        #expect(try key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(try key("2001:db8:1:2::1")?.description == "2001:db8:1:2::/64")
        #expect(try key("::ffff:10.0.0.1") == key("10.0.0.1"))
        #expect(try key("10.0.0.1") != key("10.0.0.2"))
        #expect(try key("10.0.0.1")?.description == "10.0.0.1")
    }
}
