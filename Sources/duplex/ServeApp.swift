import Duplex
import DuplexPubSub
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import Synchronization

/// What `duplex serve` does with each connection and each plain HTTP request: chat rooms on
/// `/chat` and `/chat/{room}` (with `--chat`), echo on every other path; the demo page at `/`,
/// `/healthz`, `/readyz`, `/stats` and `/metrics` (Prometheus).
final class ServeApp: Sendable {
    let chat: Bool
    let channels: Channels
    /// Where the server's metrics are gathered, for `/metrics`.
    let registry: PrometheusCollectorRegistry
    private let messages = Atomic<Int>(0)
    private let server = NIOLockedValueBox<WebSocketServer?>(nil)

    init(chat: Bool, channels: Channels, registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.chat = chat
        self.channels = channels
    }

    /// The server this app answers for, once created (for its connection count).
    func attach(_ server: WebSocketServer) {
        self.server.withLockedValue { $0 = server }
    }

    /// The chat room a request path names, or nil for an echo path.
    static func room(of target: String) -> String? {
        let path = target.prefix { $0 != "?" }
        if path == "/chat" || path == "/chat/" { return "lobby" }
        guard path.hasPrefix("/chat/") else { return nil }
        let room = path.dropFirst("/chat/".count)
        return room.isEmpty || room.contains("/") ? nil : String(room)
    }

    var handler: WebSocketServer.Handler {
        .callbacks { [self] ws in
            if chat, let room = Self.room(of: ws.request.target) {
                let channel = "chat:\(room)"
                channels.join(ws, channel)
                ws.onMessage = { [self] _, message in
                    messages.add(1, ordering: .relaxed)
                    channels.publish(message, to: channel)
                }
            } else {
                ws.onMessage = { [self] ws, message in
                    messages.add(1, ordering: .relaxed)
                    try? ws.send(message)
                }
            }
        }
    }

    var http: HTTPResponder {
        { [self] head in
            guard head.method == "GET" || head.method == "HEAD" else { return nil }
            switch String(head.target.prefix { $0 != "?" }) {
            case "/", "/index.html": return .text(DemoPage.html, contentType: "text/html; charset=utf-8")
            case "/healthz": return .text("ok\n")
            case "/readyz":
                let listening = server.withLockedValue { $0?.localAddress } != nil
                guard listening else { return .text("not listening\n", status: 503) }
                guard channels.backplane.isConnected else { return .text("backplane not connected\n", status: 503) }
                return .text("ready\n")
            case "/stats": return .text(statsJSON, contentType: "application/json")
            case "/metrics": return .text(registry.emitToString(), contentType: "text/plain; version=0.0.4; charset=utf-8")
            default: return .text("not found\n", status: 404)
            }
        }
    }

    /// `{"connections":2,"messages":17,"chat":true,"rooms":{"lobby":2}}`.
    var statsJSON: String {
        let connections = server.withLockedValue { $0?.connectionCount } ?? 0
        let rooms = channels.occupancy
            .filter { $0.key.hasPrefix("chat:") }
            .sorted { $0.key < $1.key }
            .map { "\"\(Self.escaped(String($0.key.dropFirst(5))))\":\($0.value)" }
            .joined(separator: ",")
        return #"{"connections":\#(connections),"messages":\#(messages.load(ordering: .relaxed)),"chat":\#(chat),"rooms":{\#(rooms)}}"#
    }

    private static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "?"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
