import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@Suite(.timeLimit(.minutes(1))) struct BackpressureTests {
    @Test func asyncWriterWaitsForASlowReader() async throws {
        let chunk = 256 * 1024
        let total = 200  // 50 MiB in all
        let written = NIOLockedValueBox(0)
        let server = WebSocketServer(configuration: .init(port: 0), handler: .async { _, outbound, _ in
            let payload = ByteBuffer(repeating: 0x42, count: chunk)
            for _ in 0..<total {
                try await outbound.write(.binary(payload))
                written.withLockedValue { $0 += 1 }
            }
        })
        let port = try await server.start().port!
        let client = try await RawTCPClient.connect(port: port)
        try await client.channel.setOption(ChannelOptions.autoRead, value: false).get()
        try await client.send(upgradeRequest())
        client.channel.read()  // just the handshake response, then stop reading

        // The writer stalls once the socket buffers fill: wait until the count holds for 500 ms
        // (a loaded machine may take a while to get there), then check that it stays put.
        var stalledAt = -1
        var rounds = 0
        while written.withLockedValue({ $0 }) != stalledAt && rounds < 20 {
            stalledAt = written.withLockedValue { $0 }
            rounds += 1
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(stalledAt < total / 4, "the writer ran ahead of a reader that reads nothing: \(stalledAt) of \(total)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(written.withLockedValue { $0 } == stalledAt, "still writing while the reader is stalled")

        try await client.channel.setOption(ChannelOptions.autoRead, value: true).get()
        client.channel.read()
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while written.withLockedValue({ $0 }) < total && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(written.withLockedValue { $0 } == total)
        _ = try await client.waitFor(bytes: total * chunk, timeout: .seconds(20))
        client.close()
        await server.shutdown()
    }

    @Test func inboundStopsReadingWhenTheConsumerStops() async throws {
        // The server's handler takes one message and then sleeps; the client's writes must stall
        // (TCP flow control) instead of the server buffering everything.
        let server = WebSocketServer(configuration: .init(port: 0), handler: .async { inbound, _, _ in
            var iterator = inbound.makeAsyncIterator()
            _ = await iterator.next()
            try await Task.sleep(for: .seconds(30))
        })
        let port = try await server.start().port!
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        let sent = NIOLockedValueBox(0)
        let writer = Task {
            let payload = ByteBuffer(repeating: 1, count: 256 * 1024)
            for _ in 0..<400 {  // 100 MiB if nothing pushed back
                try await ws.outbound.write(.binary(payload))
                sent.withLockedValue { $0 += 1 }
            }
        }
        try await Task.sleep(for: .milliseconds(800))
        let count = sent.withLockedValue { $0 }
        #expect(count < 100, "the client wrote \(count) × 256 KiB into a server that stopped reading")
        writer.cancel()
        // Closing must still work: the server resumes reading to get the client's close frame, rather
        // than waiting out its 5-second close timeout.
        let clock = ContinuousClock()
        let start = clock.now
        await server.shutdown()
        #expect(clock.now - start < .seconds(3))
        let info = await ws.outbound.closeInfo()
        #expect(info.code == .goingAway && info.wasClean)
    }
}
