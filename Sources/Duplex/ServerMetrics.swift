import DuplexCore
import Metrics

/// A server's instruments, through swift-metrics (whatever backend the application bootstraps:
/// Prometheus, StatsD, OpenTelemetry…; none by default, at almost no cost).
///
/// | Metric | Type | Labels |
/// |---|---|---|
/// | `duplex_connections_open` | meter | |
/// | `duplex_handshakes_total` | counter | `result` (accepted, refused), `reason` when refused |
/// | `duplex_messages_total` | counter | `direction` (in, out) |
/// | `duplex_message_bytes_total` | counter | `direction` (in, out); message payload bytes, uncompressed |
/// | `duplex_closes_total` | counter | `code` (1000, 1001, 1006 …) |
/// | `duplex_heartbeat_timeouts_total` | counter | |
/// | `duplex_slow_consumers_total` | counter | connections closed for passing their outbound limit |
/// | `duplex_rate_limited_total` | counter | connections closed for passing a message or byte rate |
/// | `duplex_outbound_high_water_total` | counter | times a socket's send buffer passed its high water mark |
final class ServerMetrics: Sendable {
    let connectionsOpen = Meter(label: "duplex_connections_open")
    let handshakesAccepted = Counter(label: "duplex_handshakes_total", dimensions: [("result", "accepted")])
    let messagesIn = Counter(label: "duplex_messages_total", dimensions: [("direction", "in")])
    let messagesOut = Counter(label: "duplex_messages_total", dimensions: [("direction", "out")])
    let bytesIn = Counter(label: "duplex_message_bytes_total", dimensions: [("direction", "in")])
    let bytesOut = Counter(label: "duplex_message_bytes_total", dimensions: [("direction", "out")])
    let heartbeatTimeouts = Counter(label: "duplex_heartbeat_timeouts_total")
    let slowConsumers = Counter(label: "duplex_slow_consumers_total")
    let rateLimited = Counter(label: "duplex_rate_limited_total")
    let highWater = Counter(label: "duplex_outbound_high_water_total")

    /// Counts a refused handshake under a short reason label.
    func refused(_ reason: String) {
        Counter(label: "duplex_handshakes_total", dimensions: [("result", "refused"), ("reason", reason)]).increment()
    }

    /// `duplex_closes_total` for the codes RFC 6455 defines (1000 to 1015), made once: making a
    /// counter asks the backend (a lock and a lookup), too much to do for every close.
    private let closesByStandardCode: [Counter] = (1000...1015).map {
        Counter(label: "duplex_closes_total", dimensions: [("code", String($0))])
    }

    func closed(_ code: CloseCode) {
        let index = Int(code.rawValue) - 1000
        if closesByStandardCode.indices.contains(index) {
            closesByStandardCode[index].increment()
        } else {
            Counter(label: "duplex_closes_total", dimensions: [("code", String(code.rawValue))]).increment()
        }
    }

    /// The reason label of a handshake failure.
    static func reason(of error: any Error) -> String {
        switch error {
        case let refused as HandshakeRefused: refused.kind.rawValue
        case is OriginPolicy.Refusal: "origin"
        case let parse as HTTPParseError: parse.status == 431 ? "too_large" : "malformed"
        case let handshake as HandshakeError: handshake.status == 426 ? "not_websocket" : "bad_request"
        case let client as WebSocketClientError: if case .handshakeTimedOut = client { "timeout" } else { "other" }
        default: "other"
        }
    }
}

/// Message and byte counts a connection gathers during a read or write cycle and hands to the
/// counters at its end, rather than touching them per message.
struct TrafficTally {
    var messagesIn = 0
    var bytesIn = 0
    var messagesOut = 0
    var bytesOut = 0

    mutating func report(to metrics: ServerMetrics?) {
        guard let metrics, messagesIn | messagesOut > 0 else { return }
        if messagesIn > 0 {
            metrics.messagesIn.increment(by: messagesIn)
            metrics.bytesIn.increment(by: bytesIn)
        }
        if messagesOut > 0 {
            metrics.messagesOut.increment(by: messagesOut)
            metrics.bytesOut.increment(by: bytesOut)
        }
        self = TrafficTally()
    }
}
