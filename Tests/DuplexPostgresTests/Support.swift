import Duplex
import DuplexTestSupport
@testable import DuplexPostgres
import DuplexPubSub
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One server process of a test: a WebSocket server whose connections join the chat room their path
/// names and publish what they send to it, over its own PostgreSQL backplane.
struct Node {
    let backplane: PostgresBackplane
    let channels: Channels
    let server: WebSocketServer
    let port: Int

    static func start(_ postgres: PostgresServer, configure: (inout PostgresBackplane.Configuration) -> Void = { _ in }) async throws -> Node {
        var configuration = try PostgresBackplane.Configuration(url: postgres.url)
        configuration.initialReconnectDelay = .milliseconds(50)
        configuration.maxReconnectDelay = .milliseconds(300)
        configure(&configuration)
        let backplane = try PostgresBackplane(configuration: configuration)
        let channels = Channels(backplane: backplane)
        try await channels.start()
        let server = WebSocketServer(configuration: .init(port: 0, limits: .init(messageRate: nil)), handler: .callbacks { ws in
            let room = String(ws.request.target.dropFirst())
            channels.join(ws, room)
            ws.onMessage = { _, message in channels.publish(message, to: room) }
        })
        let port = try await server.start().port!
        try await waitUntil("the backplane connects") { backplane.isConnected }
        return Node(backplane: backplane, channels: channels, server: server, port: port)
    }

    /// A client in `room`, with what it receives collected.
    func member(_ room: String = "room") async throws -> Member {
        let member = Member(try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/\(room)"))
        try await waitUntil("the member joins") { channels.memberCount(of: room) > 0 }
        return member
    }

    /// The backplane's state, for a failure message.
    var backplaneState: String {
        "backplane connected \(backplane.isConnected), \(backplane.queuedMessages) queued"
    }

    func stop() async {
        await server.shutdown()
        await channels.shutdown()
    }
}

/// A client and every message it has received so far.
final class Member: Sendable {
    let connection: WebSocketClientConnection
    private let box = NIOLockedValueBox<[WebSocketMessage]>([])

    init(_ connection: WebSocketClientConnection) {
        self.connection = connection
        Task { [box] in
            for await message in connection.inbound { box.withLockedValue { $0.append(message) } }
        }
    }

    var received: [WebSocketMessage] { box.withLockedValue { $0 } }

    func send(_ message: WebSocketMessage) async throws { try await connection.outbound.write(message) }
}

/// Waits (polling) until `condition` holds, failing with `what` after `timeout`, and with `state`
/// (what was seen instead) when given.
func waitUntil(_ what: String, timeout: Duration = .seconds(20), state: () -> String = { "" },
               _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            let seen = state()
            throw TestFailure("timed out after \(timeout) waiting until \(what)" + (seen.isEmpty ? "" : "; \(seen)"))
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Message `index` of publisher `name`: text or binary by turns.
func numbered(_ name: String, _ index: Int) -> WebSocketMessage {
    index % 2 == 0 ? .text("\(name)-\(index)") : .binary(ByteBuffer(string: "\(name)-\(index)"))
}

/// The messages in `received` from publisher `name`, in the order they came.
func from(_ name: String, in received: [WebSocketMessage]) -> [WebSocketMessage] {
    received.filter { String(buffer: $0.data).hasPrefix(name + "-") }
}
