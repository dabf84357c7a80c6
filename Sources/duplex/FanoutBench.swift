import Duplex
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// `duplex bench --mode fanout`: broadcast through a chat room of `duplex serve --chat`.
///
/// C subscribers join the room the URL names (`ws://127.0.0.1:8080/chat/bench`), then one more
/// connection publishes S-byte messages to it for D seconds, keeping P of them in flight: it sends
/// the next one when one of its own comes back (the sender is a member too). Every subscriber counts
/// what it receives; the result is deliveries per second across all subscribers. Start the server
/// with `--max-message-rate 0 --max-connections-per-address` above C, or its limits will stop the run.
extension LoadBench {
    func runFanout() async throws -> [(String, String)] {
        let url = self.url
        let configuration = WebSocketClient.Configuration(
            connection: .init(maxFrameSize: max(16 << 20, size + 1024), maxMessageSize: max(16 << 20, size + 1024)),
            compression: compression ? .init() : nil, proxy: .direct)
        let counts = (0..<connections).map { _ in SharedCount() }
        let next = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(connections, 64) {
                group.addTask {
                    while true {
                        let index = next.withLockedValue { value -> Int in value += 1; return value - 1 }
                        guard index < counts.count else { return }
                        let count = counts[index]
                        try await WebSocketClient.connect(to: url, configuration: configuration) { connection in
                            connection.onMessage = { _, _ in count.add(1) }
                        }
                        if (index + 1) % 250 == 0 { fanoutProgress("bench: \(index + 1) subscribers joined") }
                    }
                }
            }
            try await group.waitForAll()
        }
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        let message: WebSocketMessage = binary ? .binary(payload) : .text(String(buffer: payload))
        let published = SharedCount()
        let running = NIOLockedValueBox(true)
        let inFlight = self.inFlight
        try await WebSocketClient.connect(to: url, configuration: configuration) { connection in
            connection.onMessage = { connection, _ in
                guard running.withLockedValue({ $0 }) else { return }
                published.add(1)
                try? connection.send(message)
            }
            for _ in 0..<inFlight { try? connection.send(message) }
        }
        let start = ContinuousClock.now
        var last = 0
        for second in 1...Int(duration.rounded(.up)) {
            try await Task.sleep(until: start + .seconds(min(Double(second), duration)))
            let total = counts.reduce(0) { $0 + $1.load() }
            fanoutProgress("bench: \(second) s  \(total - last) deliveries/s")
            last = total
        }
        running.withLockedValue { $0 = false }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let received = counts.map { $0.load() }
        let total = received.reduce(0, +)
        return [
            ("mode", "fanout"), ("subscribers", "\(connections)"), ("in_flight", "\(inFlight)"), ("size", "\(size)"),
            ("seconds", String(format: "%.2f", seconds)), ("published", "\(published.load())"),
            ("deliveries", "\(total)"), ("delivered_per_s", String(format: "%.0f", Double(total) / seconds)),
            ("messages_per_s", String(format: "%.0f", Double(published.load()) / seconds)),
            ("min_received", "\(received.min() ?? 0)"), ("max_received", "\(received.max() ?? 0)"),
        ]
    }
}

private func fanoutProgress(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
