@testable import Duplex
import NIOCore
import NIOPosix
import Testing

/// The limits on the opening handshake and on connections, refused exactly (status, `Retry-After`,
/// reason), each with a well-behaved client exchanging messages at the same time.
@Suite(.timeLimit(.minutes(1))) struct HandshakeLimitsTests {
    let limits = LimitsTests()

    /// A head that grows past `maxHandshakeSize` a piece at a time gets 431 with its reason as soon
    /// as it passes the limit, without waiting for the end of the head.
    @Test func handshakeOverTheSizeLimitGets431WithItsReason() async throws {
        let server = WebSocketServer(
            configuration: .init(port: 0, maxHandshakeSize: 1_024),
            handler: .callbacks { ws in ws.onMessage = { ws, message in try? ws.send(message) } })
        let port = try await server.start().port!
        let good = try await LimitsTests.Talker.connect(port: port)

        let raw = try await RawTCPClient.connect(port: port)
        try await raw.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for index in 0..<20 {
            try? await raw.send("X-Padding-\(index): \(String(repeating: "a", count: 100))\r\n")
            try await good.exchange(count: 1, tag: "during \(index)")
            if !raw.channel.isActive { break }
        }
        let response = String(buffer: try await raw.receivedUntilClosed())
        #expect(response.statusLine == "HTTP/1.1 431 Request Header Fields Too Large")
        #expect(response.hasSuffix("\r\n\r\nHTTP head is too large\n"))
        try await good.exchange(count: 5, tag: "after")
        await server.shutdown()
    }

    /// Slowloris proper: a client that keeps sending a header byte every 100 ms never finishes its
    /// head, and is dropped at the handshake timeout however busy it looks; a client connected at
    /// the same time exchanges messages throughout.
    @Test func clientDribblingItsHeadIsDroppedAtTheHandshakeTimeout() async throws {
        let (server, port) = try await limits.server(ServerLimits(), handshakeTimeout: .seconds(1))
        let good = try await LimitsTests.Talker.connect(port: port)
        let raw = try await RawTCPClient.connect(port: port)
        try await raw.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        let start = ContinuousClock.now
        var sent = 0
        while raw.channel.isActive, ContinuousClock.now - start < .seconds(5) {
            try? await raw.send("a")
            sent += 1
            try await good.exchange(count: 1, tag: "during \(sent)")
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = ContinuousClock.now - start
        #expect(!raw.channel.isActive, "the dribbling client was still connected after 5 s")
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(4), "dropped after \(elapsed)")
        #expect(sent >= 5, "the client dribbled only \(sent) bytes before being dropped")
        #expect(raw.received.readableBytes == 0, "a client that never finished its head gets no response")
        try await good.exchange(count: 5, tag: "after")
        for _ in 0..<50 where server.connectionCount != 1 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.connectionCount == 1)
        await server.shutdown()
    }

    /// On Linux the kernel holds a connection until its client speaks (TCP_DEFER_ACCEPT): a silent
    /// one costs the server nothing until it sends its request, is then served, and one that stays
    /// silent is still dropped once the deferral and then the handshake timeout have passed.
    @Test func silentConnectionsWaitInTheKernelAndAreStillDropped() async throws {
        #if os(Linux)
        let (server, port) = try await limits.server(ServerLimits(), handshakeTimeout: .seconds(1))
        let late = try await RawTCPClient.connect(port: port)
        let silent = try await RawTCPClient.connect(port: port)
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.connectionCount == 0, "a connection that has sent nothing is not accepted yet")
        try await late.send(upgradeRequest())
        for _ in 0..<100 where !late.received.readableBytesView.starts(with: "HTTP/1.1 101".utf8) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(String(buffer: late.received).statusLine == "HTTP/1.1 101 Switching Protocols")
        let start = ContinuousClock.now
        try await silent.channel.closeFuture.get()
        #expect(ContinuousClock.now - start < .seconds(20), "the silent connection was dropped")
        #expect(silent.received.readableBytes == 0)
        late.channel.close(promise: nil)
        await server.shutdown()
        #endif
    }

    /// The 503 of the total limit, read off the wire: status, `Retry-After` and reason.
    @Test func totalLimitRefusalCarriesRetryAfterAndItsReason() async throws {
        let (server, port) = try await limits.server(ServerLimits(maxConnections: 2, retryAfter: .seconds(3)))
        let good = try await LimitsTests.Talker.connect(port: port)
        let second = try await LimitsTests.Talker.connect(port: port)
        let raw = try await RawTCPClient.connect(port: port)
        try await raw.send(upgradeRequest())
        let response = String(buffer: try await raw.receivedUntilClosed())
        #expect(response.statusLine == "HTTP/1.1 503 Service Unavailable")
        #expect(response.contains("\r\nRetry-After: 3\r\n"))
        #expect(response.hasSuffix("\r\n\r\nthe server is at its connection limit\n"))
        try await good.exchange(count: 3, tag: "good")
        try await second.exchange(count: 3, tag: "second")
        await server.shutdown()
    }

    /// `Forwarded` (RFC 7239) over a real connection: from a trusted proxy its `for=` is the client,
    /// from anyone else it is ignored.
    @Test func forwardedFieldFromATrustedProxyNamesTheClient() async throws {
        let admission = AdmissionTests()
        let (server, port) = try await admission.greetingServer(.init(trustedProxies: [try IPNetwork("127.0.0.1")]))
        let good = try await admission.talker(port: port)
        let (proxied, status, greeting) = try await admission.open(
            port: port, headers: "Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https, for=127.0.0.1\r\n")
        #expect(status == "HTTP/1.1 101 Switching Protocols")
        #expect(greeting == "2001:db8:cafe::17")
        let (spoofer, _, spoofed) = try await admission.open(port: port, from: "127.0.0.3", headers: "Forwarded: for=203.0.113.9\r\n")
        #expect(spoofed == "127.0.0.3")
        try await good.exchange(count: 3, tag: "good")
        proxied.close()
        spoofer.close()
        await server.shutdown()
    }
}
