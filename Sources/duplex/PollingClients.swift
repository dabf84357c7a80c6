import Duplex
import NIOCore
import NIOHTTP1
import NIOPosix

/// A WebSocket client of the event stream: one handshake, then every event pushed to it.
enum WebSocketEventClient {
    static func run(port: Int, until last: Int, deadline: ContinuousClock.Instant, tally: DeliveryTally) async throws {
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/events", configuration: .init(proxy: .direct))
        tally.addRequest()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // A stream that stalls is cut off at the deadline; what arrived is counted.
                try await Task.sleep(until: deadline)
                _ = try? await ws.outbound.close(code: .goingAway, reason: "deadline")
            }
            var seen = 0
            for await message in ws.inbound {
                if message.text == "ready" {
                    tally.clientReady()
                    continue
                }
                seen = try tally.record(message.data, newerThan: seen)
                if seen >= last { break }
            }
            group.cancelAll()
        }
        _ = try? await ws.outbound.close()
    }
}

/// An HTTP client of the event stream on one kept-alive connection: short polling asks every
/// `interval` (from a random phase), long polling asks again as soon as an answer arrives.
enum PollingClient {
    enum Mode: Sendable {
        case short(interval: Double)
        case long
    }

    static func run(port: Int, mode: Mode, until last: Int, deadline: ContinuousClock.Instant, tally: DeliveryTally) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { responses, requests in
            var parts = responses.makeAsyncIterator()
            var seen = 0
            var ready = false
            var due = ContinuousClock.now
            while seen < last, ContinuousClock.now < deadline {
                var uri = "/events?after=\(seen)"
                if case .long = mode, ready { uri += "&wait=1" }  // the first answer is at once: the client is in place
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
                head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
                head.headers.add(name: "Accept", value: "application/json")
                try await requests.write(.head(head))
                try await requests.write(.end(nil))
                tally.addRequest()
                var body = ByteBuffer()
                reading: while true {
                    switch try await parts.next() {
                    case .head(let response)?:
                        guard response.status == .ok else { throw PollingBenchError("poll answered \(response.status)") }
                    case .body(let bytes)?: body.writeImmutableBuffer(bytes)
                    case .end?: break reading
                    case nil: throw PollingBenchError("the server closed the polling connection")
                    }
                }
                seen = try tally.record(body, newerThan: seen)
                if !ready {
                    ready = true
                    tally.clientReady()
                    // Each short poller keeps its own phase, as independent browsers do.
                    if case .short(let interval) = mode { due = ContinuousClock.now + .seconds(Double.random(in: 0..<interval)) - .seconds(interval) }
                }
                if case .short(let interval) = mode {
                    due += .seconds(interval)
                    try await Task.sleep(until: due)
                }
            }
        }
    }
}

/// A TCP relay in front of a server that counts the bytes each way: what the clients' traffic costs
/// on the wire, whatever the protocol.
struct ByteCountingRelay: Sendable {
    let port: Int
    let bytesUp: SharedCount
    let bytesDown: SharedCount
    private let channel: any Channel
    private let task: Task<Void, any Error>

    static func start(to target: Int) async throws -> ByteCountingRelay {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let up = SharedCount()
        let down = SharedCount()
        let task = Task {
            try await server.executeThenClose { clients in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await client in clients {
                        group.addTask { try? await relay(client, to: target, up: up, down: down) }
                    }
                }
            }
        }
        return ByteCountingRelay(port: server.channel.localAddress!.port!, bytesUp: up, bytesDown: down, channel: server.channel, task: task)
    }

    private init(port: Int, bytesUp: SharedCount, bytesDown: SharedCount, channel: any Channel, task: Task<Void, any Error>) {
        self.port = port
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.channel = channel
        self.task = task
    }

    private static func relay(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to port: Int, up: SharedCount, down: SharedCount) async throws {
        let server = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let channels = (client.channel, server.channel)
        try await client.executeThenClose { fromClient, toClient in
            try await server.executeThenClose { fromServer, toServer in
                await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await bytes in fromClient {
                            up.add(bytes.readableBytes)
                            try await toServer.write(bytes)
                        }
                    }
                    group.addTask {
                        for try await bytes in fromServer {
                            down.add(bytes.readableBytes)
                            try await toClient.write(bytes)
                        }
                    }
                    // Either side's end ends both.
                    _ = try? await group.next()
                    channels.0.close(promise: nil)
                    channels.1.close(promise: nil)
                    group.cancelAll()
                }
            }
        }
    }

    func shutdown() async {
        try? await channel.close()
        task.cancel()
        _ = try? await task.value
    }
}
