import ArgumentParser
import Duplex
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix

/// `duplex bench polling`: one event stream delivered to the same clients by WebSocket push, by HTTP
/// long polling and by HTTP short polling at several intervals, all in this process over loopback.
///
/// Every client's traffic passes through a byte-counting relay, so "bytes" are the TCP payload bytes
/// both ways (handshakes and HTTP heads included; TCP/IP headers not). Latency is from the moment an
/// event is published to the moment a client has parsed it, on one clock.
struct PollingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "polling",
        abstract: "Compare WebSocket push with HTTP long and short polling for one event stream.",
        discussion: """
            A server in this process publishes RATE events a second of SIZE bytes for D seconds to C clients, \
            once over WebSocket, once by long polling and once by short polling at each --interval. For each it \
            reports the events delivered, delivery latency (p50, p99, max), the bytes on the wire per event \
            delivered and the HTTP requests per event delivered.
            """
    )

    @Option(name: [.customShort("c"), .customLong("clients")], help: "Clients receiving the stream.")
    var clients = 50

    @Option(help: "Events published per second.")
    var rate = 20.0

    @Option(name: [.customShort("s"), .customLong("size")], help: "Bytes of data in each event.")
    var size = 64

    @Option(name: [.customShort("d"), .customLong("duration")], help: "Seconds each transport runs.")
    var duration = 5.0

    @Option(name: .customLong("interval"), help: "A short-polling interval in seconds (repeatable).")
    var intervals: [Double] = [0.1, 0.5, 1.0]

    @Flag(help: "Print the results as JSON (one object per transport, in an array).")
    var json = false

    func validate() throws {
        guard clients > 0, rate > 0, size >= 0, duration > 0, intervals.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--clients, --rate, --duration and every --interval must be positive, --size not negative")
        }
    }

    func run() async throws {
        let stream = EventStream.Plan(rate: rate, size: size, duration: duration)
        var results: [PollingResult] = []
        let transports: [Transport] = [.webSocket, .longPolling] + intervals.map { .shortPolling(interval: $0) }
        for transport in transports {
            FileHandle.standardError.write(Data("bench: \(transport.name) with \(clients) clients for \(duration) s\n".utf8))
            results.append(try await transport.measure(clients: clients, plan: stream))
        }
        if json {
            let objects = results.map(\.json)
            print("[" + objects.joined(separator: ",\n ") + "]")
        } else {
            print(PollingResult.table(results))
        }
    }
}

/// How the events reach the clients.
enum Transport: Sendable {
    case webSocket
    case longPolling
    case shortPolling(interval: Double)

    var name: String {
        switch self {
        case .webSocket: "websocket"
        case .longPolling: "long-polling"
        case .shortPolling(let interval): "short-polling \(Int((interval * 1000).rounded())) ms"
        }
    }

    /// Runs the stream to `clients` over this transport and measures it.
    func measure(clients: Int, plan: EventStream.Plan) async throws -> PollingResult {
        let stream = EventStream()
        let tally = DeliveryTally(clients: clients)
        let server: any EventServer =
            switch self {
            case .webSocket: try await WebSocketEventServer.start(stream: stream)
            case .longPolling, .shortPolling: try await HTTPEventServer.start(stream: stream)
            }
        let relay = try await ByteCountingRelay.start(to: server.port)
        let lastSeq = plan.count
        // Clients stop at the deadline even if something was lost; the tally shows what arrived.
        let deadline = ContinuousClock.now + .seconds(plan.duration + 15)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    switch self {
                    case .webSocket:
                        try await WebSocketEventClient.run(port: relay.port, until: lastSeq, deadline: deadline, tally: tally)
                    case .longPolling:
                        try await PollingClient.run(port: relay.port, mode: .long, until: lastSeq, deadline: deadline, tally: tally)
                    case .shortPolling(let interval):
                        try await PollingClient.run(port: relay.port, mode: .short(interval: interval), until: lastSeq, deadline: deadline, tally: tally)
                    }
                }
            }
            // Publish once every client is in place.
            try await tally.waitForClients()
            group.addTask { try await stream.publish(plan) }
            try await group.waitForAll()
        }
        await relay.shutdown()
        await server.shutdown()
        return tally.result(transport: name, size: plan.size, published: plan.count, bytesUp: relay.bytesUp.load(), bytesDown: relay.bytesDown.load())
    }
}

/// What one transport did with the stream.
struct PollingResult: Sendable {
    let transport: String
    let clients: Int
    let size: Int
    let published: Int
    let delivered: Int
    let requests: Int
    let bytesUp: Int
    let bytesDown: Int
    let latency: Histogram<UInt64>

    private func millis(_ percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1e6 }
    private var bytesPerEvent: Double { Double(bytesUp + bytesDown) / Double(max(delivered, 1)) }
    private var requestsPerEvent: Double { Double(requests) / Double(max(delivered, 1)) }

    var json: String {
        String(format: #"{"transport":"%@","clients":%d,"size":%d,"events":%d,"delivered":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"#
            + #""bytes_up":%d,"bytes_down":%d,"bytes_per_event":%.1f,"requests":%d,"requests_per_event":%.3f}"#,
            transport, clients, size, published, delivered, millis(50), millis(99), Double(latency.max) / 1e6,
            bytesUp, bytesDown, bytesPerEvent, requests, requestsPerEvent)
    }

    static func table(_ results: [PollingResult]) -> String {
        let header = ["transport", "delivered", "p50 ms", "p99 ms", "max ms", "bytes/event", "requests/event"]
        let rows = results.map { result in
            [result.transport, "\(result.delivered)/\(result.published * result.clients)",
             String(format: "%.2f", result.millis(50)), String(format: "%.2f", result.millis(99)),
             String(format: "%.2f", Double(result.latency.max) / 1e6),
             String(format: "%.0f", result.bytesPerEvent), String(format: "%.3f", result.requestsPerEvent)]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        return ([header] + rows).map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset] + 2, withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n")
    }
}
