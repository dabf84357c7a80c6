import Duplex
import DuplexTestSupport
import Foundation
import NIOCore
import Testing

/// Two `duplex serve --chat` processes sharing rooms through PostgreSQL, as a user runs them: one
/// given `--backplane`, the other `DUPLEX_SERVE_BACKPLANE`; `/readyz` follows the backplane through
/// a PostgreSQL restart, and `/metrics` counts the backplane's work.
@Suite(.timeLimit(.minutes(2))) struct ServeBackplaneTests {
    @Test func twoProcessesShareRoomsAndReadinessFollowsPostgres() async throws {
        let postgres = try await PostgresServer.start()
        defer { postgres.destroy() }
        let (first, firstPort) = try await ServeProcess.start(["--chat", "--backplane", postgres.url])
        defer { first.terminate() }
        let (second, secondPort) = try await ServeProcess.start(["--chat"], environment: ["DUPLEX_SERVE_BACKPLANE": postgres.url])
        defer { second.terminate() }
        for port in [firstPort, secondPort] {
            try await eventually("\(port) is ready") { try await httpGet(port: port, "/readyz").hasSuffix("\r\n\r\nready\n") }
        }
        let alice = Member(try await WebSocketClient.connect(to: "ws://127.0.0.1:\(firstPort)/chat/garden"))
        let bob = Member(try await WebSocketClient.connect(to: "ws://127.0.0.1:\(secondPort)/chat/garden"))
        try await eventually("both joined") {
            let first = try await httpGet(port: firstPort, "/stats"), second = try await httpGet(port: secondPort, "/stats")
            return first.contains(#""garden":1"#) && second.contains(#""garden":1"#)
        }
        try await alice.send(.text("hello from the first"))
        try await bob.send(.binary([1, 2, 3]))
        try await waitUntil("both have both") { alice.received.count == 2 && bob.received.count == 2 }
        #expect(Set(alice.received) == [.text("hello from the first"), .binary([1, 2, 3])])
        #expect(Set(bob.received) == Set(alice.received))

        try await postgres.stop()
        for port in [firstPort, secondPort] {
            try await eventually("\(port) is not ready") {
                let answer = try await httpGet(port: port, "/readyz")
                return answer.hasPrefix("HTTP/1.1 503") && answer.hasSuffix("backplane not connected\n")
            }
        }
        try await alice.send(.text("during the outage"))
        try await postgres.start()
        try await waitUntil("both have the message sent during the outage") { alice.received.count == 3 && bob.received.count == 3 }
        #expect(bob.received.last == .text("during the outage"))
        for port in [firstPort, secondPort] {
            try await eventually("\(port) is ready again") { try await httpGet(port: port, "/readyz").hasSuffix("\r\n\r\nready\n") }
        }
        let metrics = Set(try await httpGet(port: firstPort, "/metrics").split(separator: "\n").map(String.init))
        for expected in [
            "duplex_backplane_published_total 2",
            #"duplex_backplane_reconnects_total{role="listener"} 1"#,
            #"duplex_backplane_reconnects_total{role="publisher"} 1"#,
            "duplex_backplane_connected 1.0",
        ] {
            #expect(metrics.contains(expected), "missing \(expected) in \(metrics.sorted())")
        }
        // Live or from the table, depending on whether the listener was back before the row committed.
        let delivered = metrics.filter { $0.hasPrefix("duplex_backplane_delivered_total{") }.compactMap { Int($0.split(separator: " ").last ?? "") }
        #expect(delivered.reduce(0, +) == 3, "\(metrics.sorted())")
        #expect(metrics.contains { $0.hasPrefix("duplex_backplane_lag_seconds_count") && $0.hasSuffix(" 3") }, "\(metrics.sorted())")
    }
}

/// Waits until the asynchronous `check` returns true (an error counts as not yet).
func eventually(_ what: String, timeout: Duration = .seconds(20), _ check: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while (try? await check()) != true {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out after \(timeout) waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
