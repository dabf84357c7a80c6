import Duplex
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The benchmark's event stream: events numbered from 1, stamped with the time they were published,
/// kept for the pollers, pushed to WebSocket subscribers and handed to waiting long polls.
final class EventStream: Sendable {
    /// How many events, how often and how large.
    struct Plan: Sendable {
        let rate: Double
        let size: Int
        let duration: Double
        var count: Int { max(1, Int((rate * duration).rounded())) }
    }

    /// One event and its JSON form, `{"seq":N,"t":NANOSECONDS,"data":"…"}`.
    struct Event: Sendable {
        let seq: Int
        let json: String
    }

    private struct State {
        var events: [Event] = []
        var subscribers: [@Sendable (Event) -> Void] = []
        var waiters: [Int: CheckedContinuation<[Event], Never>] = [:]
        var nextWaiter = 0
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    /// `push` is called with every event published from now on.
    func subscribe(_ push: @escaping @Sendable (Event) -> Void) {
        state.withLockedValue { $0.subscribers.append(push) }
    }

    /// The events after number `seq`.
    func events(after seq: Int) -> [Event] {
        state.withLockedValue { Array($0.events.dropFirst(max(0, seq))) }
    }

    /// The events after number `seq`, waiting up to `hold` for one when there is none yet.
    func next(after seq: Int, hold: Duration) async -> [Event] {
        let available = events(after: seq)
        guard available.isEmpty else { return available }
        let id = state.withLockedValue { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timeout = Task { [self] in
            try await Task.sleep(for: hold)
            resume(waiter: id, with: [])
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let ready = state.withLockedValue { state -> [Event]? in
                let available = Array(state.events.dropFirst(max(0, seq)))
                if !available.isEmpty || state.finished { return available }
                state.waiters[id] = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func resume(waiter id: Int, with events: [Event]) {
        state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(returning: events)
    }

    /// Publishes `plan.count` events at `plan.rate` a second.
    func publish(_ plan: Plan) async throws {
        let data = String(repeating: "x", count: plan.size)
        let start = ContinuousClock.now
        for seq in 1...plan.count {
            try await Task.sleep(until: start + .seconds(Double(seq - 1) / plan.rate))
            let event = Event(seq: seq, json: #"{"seq":\#(seq),"t":\#(DispatchTime.now().uptimeNanoseconds),"data":"\#(data)"}"#)
            let (subscribers, waiters) = state.withLockedValue { state in
                state.events.append(event)
                defer { state.waiters.removeAll() }
                return (state.subscribers, Array(state.waiters.values))
            }
            for push in subscribers { push(event) }
            for waiter in waiters { waiter.resume(returning: [event]) }
        }
    }

    /// Answers every waiting long poll with nothing, and every later one at once.
    func finish() {
        let waiters = state.withLockedValue { state in
            state.finished = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: []) }
    }
}

/// What the clients of one run received: readiness, events, latencies and HTTP requests.
final class DeliveryTally: Sendable {
    private struct State {
        var ready = 0
        var delivered = 0
        var requests = 0
        var latency = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    }

    private struct Received: Decodable {
        let seq: Int
        let t: UInt64
    }

    let clients: Int
    private let state = NIOLockedValueBox(State())

    init(clients: Int) {
        self.clients = clients
    }

    /// A client is in place: subscribed, or through its first poll.
    func clientReady() {
        state.withLockedValue { $0.ready += 1 }
    }

    /// Waits until every client is ready.
    func waitForClients(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while state.withLockedValue({ $0.ready }) < clients {
            guard ContinuousClock.now < deadline else { throw PollingBenchError("clients not ready within \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// An HTTP request went out (a poll, or a WebSocket handshake).
    func addRequest() {
        state.withLockedValue { $0.requests += 1 }
    }

    /// Records the events in `json` (one event, or an array of them) newer than `seen`; returns the
    /// newest number seen.
    func record(_ json: ByteBuffer, newerThan seen: Int) throws -> Int {
        let now = DispatchTime.now().uptimeNanoseconds
        let bytes = Data(json.readableBytesView)
        let events =
            json.readableBytesView.first == UInt8(ascii: "[")
            ? try JSONDecoder().decode([Received].self, from: bytes) : [try JSONDecoder().decode(Received.self, from: bytes)]
        let fresh = events.filter { $0.seq > seen }
        state.withLockedValue { state in
            state.delivered += fresh.count
            for event in fresh { _ = state.latency.record(now - min(now, event.t)) }
        }
        return max(seen, events.map(\.seq).max() ?? seen)
    }

    func result(transport: String, size: Int, published: Int, bytesUp: Int, bytesDown: Int) -> PollingResult {
        state.withLockedValue { state in
            PollingResult(transport: transport, clients: clients, size: size, published: published, delivered: state.delivered,
                          requests: state.requests, bytesUp: bytesUp, bytesDown: bytesDown, latency: state.latency)
        }
    }
}

/// A failure of the polling benchmark itself (clients not ready in time, a poll refused), with what went wrong.
struct PollingBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A server of the event stream.
protocol EventServer: Sendable {
    var port: Int { get }
    func shutdown() async
}

/// Pushes every event to every WebSocket connection (Duplex, callback API, no compression).
struct WebSocketEventServer: EventServer {
    let server: WebSocketServer
    let port: Int

    static func start(stream: EventStream) async throws -> WebSocketEventServer {
        let server = WebSocketServer(configuration: .init(port: 0, limits: ServerLimits(maxConnectionsPerAddress: 100_000, messageRate: nil)),
                                     handler: .callbacks { ws in
                                         let connection = NIOLoopBound(ws, eventLoop: ws.eventLoop)
                                         let eventLoop = ws.eventLoop
                                         stream.subscribe { event in eventLoop.execute { try? connection.value.send(text: event.json) } }
                                         try? ws.send(text: "ready")
                                     })
        let port = try await server.start().port!
        return WebSocketEventServer(server: server, port: port)
    }

    func shutdown() async { await server.shutdown() }
}

/// Answers `GET /events?after=N` with the events after N as a JSON array, on kept-alive HTTP/1.1
/// connections; with `&wait=1` (long polling) it holds the request until there is one (5 s at most).
struct HTTPEventServer: EventServer {
    let port: Int
    let stream: EventStream
    let channel: any Channel
    let task: Task<Void, any Error>

    static func start(stream: EventStream) async throws -> HTTPEventServer {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let channel = server.channel
        let task = Task {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { try? await serve(connection, stream: stream) }
                    }
                }
            }
        }
        return HTTPEventServer(port: channel.localAddress!.port!, stream: stream, channel: channel, task: task)
    }

    private static func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, stream: EventStream) async throws {
        try await connection.executeThenClose { requests, responses in
            for try await part in requests {
                guard case .head(let head) = part else { continue }
                let query = URLComponents(string: head.uri)?.queryItems ?? []
                let after = query.first { $0.name == "after" }?.value.flatMap { Int($0) } ?? 0
                let wait = query.contains { $0.name == "wait" }
                let events = wait ? await stream.next(after: after, hold: .seconds(5)) : stream.events(after: after)
                let body = ByteBuffer(string: "[" + events.map(\.json).joined(separator: ",") + "]")
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Cache-Control", value: "no-store")
                headers.add(name: "Content-Length", value: String(body.readableBytes))
                try await responses.write(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers)))
                try await responses.write(.body(.byteBuffer(body)))
                try await responses.write(.end(nil))
            }
        }
    }

    func shutdown() async {
        stream.finish()
        try? await channel.close()
        task.cancel()
        _ = try? await task.value
    }
}
