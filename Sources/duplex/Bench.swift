import ArgumentParser
import Duplex
import Foundation
import Histogram
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

struct LoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a WebSocket echo server and measure it (the default: `duplex bench URL`).",
        discussion: """
            echo: C connections each keep P messages of S bytes in flight for D seconds; reports messages/s, MB/s \
            and round-trip latency percentiles. connect: C connections at a time open and close (handshakes/s). \
            idle: C connections opened and held for D seconds. Progress goes to standard error every second; \
            the result to standard output, as a table or, with --json, as one JSON object.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case echo, connect, idle, fanout, tcp
    }

    enum Driver: String, ExpressibleByArgument, CaseIterable {
        case client, frames
    }

    @Argument(help: "The server's ws:// URL (it must echo).")
    var url: String

    @Option(help: "echo, connect, idle, fanout (one publisher, C subscribers of a --chat room) or tcp (the echo workload over raw TCP, against a TCP echo server).")
    var mode: Mode = .echo

    @Option(name: [.customShort("c"), .customLong("connections")], help: "Connections.")
    var connections = 64

    @Option(name: [.customShort("p"), .customLong("in-flight")], help: "Messages in flight per connection (echo).")
    var inFlight = 16

    @Option(name: [.customShort("s"), .customLong("size")], help: "Message size in bytes (echo).")
    var size = 32

    @Option(name: [.customShort("d"), .customLong("duration")], help: "Seconds to measure.")
    var duration = 10.0

    @Flag(help: "Binary messages instead of text.")
    var binary = false

    @Flag(help: "Offer permessage-deflate.")
    var compression = false

    @Option(help: """
        What speaks WebSocket (echo and connect): client, Duplex's WebSocketClient; or frames, a lean driver \
        that writes frames prepared in advance and counts echoes from their headers without assembling them, \
        so that the load generator costs little more than in --mode tcp (ws:// only, no compression).
        """)
    var driver: Driver = .client

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard connections > 0, inFlight > 0, size >= 0, duration > 0 else {
            throw ValidationError("--connections and --in-flight must be positive, --size not negative, --duration positive")
        }
        if driver == .frames, mode != .echo, mode != .connect {
            throw ValidationError("--driver frames drives the echo and connect modes only")
        }
    }

    func run() async throws {
        let result: [(String, String)]
        switch mode {
        case .echo: result = try await driver == .frames ? runFrameEcho() : runEcho()
        case .connect: result = try await driver == .frames ? runFrameConnect() : runConnect()
        case .idle: result = try await runIdle()
        case .fanout: result = try await runFanout()
        case .tcp: result = try await runTCP()
        }
        if json {
            let fields = result.map { "\"\($0.0)\":\(Double($0.1) != nil ? $0.1 : "\"\($0.1)\"")" }
            say("{" + fields.joined(separator: ",") + "}")
        } else {
            for (name, value) in result { say(name.padding(toLength: 16, withPad: " ", startingAt: 0) + value) }
        }
    }

    private var clientConfiguration: WebSocketClient.Configuration {
        WebSocketClient.Configuration(connection: .init(maxFrameSize: max(16 << 20, size + 1024), maxMessageSize: max(16 << 20, size + 1024)),
                                      compression: compression ? .init() : nil, proxy: .direct)
    }

    // MARK: echo

    private func runEcho() async throws -> [(String, String)] {
        let url = self.url
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        let message: WebSocketMessage = binary ? .binary(payload) : .text(String(buffer: payload))
        let drivers = NIOLockedValueBox<[EchoDriver.Handle]>([])
        let configuration = clientConfiguration
        let inFlight = self.inFlight
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    try await WebSocketClient.connect(to: url, configuration: configuration) { connection in
                        let driver = EchoDriver(connection: connection, message: message, inFlight: inFlight)
                        drivers.withLockedValue { $0.append(driver.handle) }
                    }
                }
            }
            try await group.waitForAll()
        }
        return try await measureRoundTrips(drivers.withLockedValue { $0 }, mode: "echo", size: size)
    }

    // MARK: connect

    /// C connections at a time, each opened, closed and opened again until the deadline. It stays on
    /// the event loops (the futures API of the client, callbacks on the connection): no task per
    /// connection, so that the load generator spends its CPU on handshakes.
    private func runConnect() async throws -> [(String, String)] {
        let url = try WebSocketURL(self.url)
        let configuration = clientConfiguration
        let logger = Logger(label: "duplex.bench")
        return try await measureHandshakes { eventLoop, done in
            _ = WebSocketClient.connect(
                to: url, configuration: configuration, eventLoop: eventLoop, logger: logger,
                onOpen: { connection in
                    connection.onClose = { _, _ in eventLoop.execute { done(true) } }
                    try? connection.close()
                },
                // Later, not from inside the failure: a failure reported at once would recurse.
                onFailure: { _ in eventLoop.execute { done(false) } })
        }
    }

    /// Runs `attempt` (a handshake and a close, which calls `done` with whether it succeeded, from
    /// the event loop, not from inside the attempt) C at a time until the deadline; counts them.
    func measureHandshakes(
        _ attempt: @escaping @Sendable (any EventLoop, _ done: @escaping @Sendable (Bool) -> Void) -> Void
    ) async throws -> [(String, String)] {
        let deadline = NIODeadline.now() + .seconds(Int64(duration))
        let start = ContinuousClock.now
        let cpuAtStart = processCPUSeconds()
        let completed = SharedCount()
        let failed = SharedCount()
        let group = MultiThreadedEventLoopGroup.singleton
        let slots: [EventLoopFuture<Void>] = (0..<connections).map { _ in
            let eventLoop = group.next()
            let finished = eventLoop.makePromise(of: Void.self)
            @Sendable func next() {
                guard NIODeadline.now() < deadline else { return finished.succeed() }
                attempt(eventLoop) { succeeded in
                    (succeeded ? completed : failed).add(1)
                    next()
                }
            }
            eventLoop.execute { next() }
            return finished.futureResult
        }
        for slot in slots { try await slot.get() }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let cpu = processCPUSeconds() - cpuAtStart
        let count = completed.load()
        return [("mode", "connect"), ("concurrency", "\(connections)"), ("seconds", String(format: "%.2f", seconds)),
                ("handshakes", "\(count)"), ("failed", "\(failed.load())"),
                ("handshakes_per_s", String(format: "%.0f", Double(count) / seconds)),
                ("bench_cpu_percent", String(format: "%.0f", cpu / seconds * 100))]
    }

    // MARK: idle

    private func runIdle() async throws -> [(String, String)] {
        let configuration = clientConfiguration
        var held: [WebSocketClientConnection] = []
        for index in 0..<connections {
            held.append(try await WebSocketClient.connect(to: url, configuration: configuration))
            if (index + 1) % 1000 == 0 { report("bench: \(index + 1) connections open") }
        }
        report("bench: \(held.count) connections open; holding them \(duration) s")
        try await Task.sleep(for: .seconds(duration))
        for ws in held { _ = try? await ws.outbound.close() }
        return [("mode", "idle"), ("connections", "\(held.count)"), ("seconds", String(format: "%.2f", duration))]
    }

    private func report(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// One echo connection of the client driver, on its event loop: keeps `inFlight` messages out,
/// records each round trip.
final class EchoDriver {
    /// What other threads hold of a driver.
    struct Handle: RoundTripHandle {
        let eventLoop: any EventLoop
        let driver: NIOLoopBound<EchoDriver>
        let received: SharedCount

        func start() {
            let driver = self.driver
            eventLoop.execute { driver.value.start() }
        }

        /// Stops sending and returns the count and the latencies (nanoseconds).
        func finish() async throws -> (Int, Histogram<UInt64>) {
            let driver = self.driver
            return try await eventLoop.submit {
                driver.value.running = false
                return (driver.value.clock.count, driver.value.clock.latencies)
            }.get()
        }
    }

    private let connection: WebSocketConnection
    private let message: WebSocketMessage
    private let inFlight: Int
    var running = false
    var clock = RoundTripClock()

    /// Made on the connection's event loop.
    var handle: Handle {
        Handle(eventLoop: connection.eventLoop, driver: NIOLoopBound(self, eventLoop: connection.eventLoop), received: clock.received)
    }

    init(connection: WebSocketConnection, message: WebSocketMessage, inFlight: Int) {
        self.connection = connection
        self.message = message
        self.inFlight = inFlight
        connection.onMessage = { [self] _, _ in receivedEcho() }
    }

    func start() {
        running = true
        for _ in 0..<inFlight { sendOne() }
    }

    private func sendOne() {
        clock.sent()
        try? connection.send(message)
    }

    private func receivedEcho() {
        if clock.echoed(), running { sendOne() }
    }
}

/// A count several threads update or read.
final class SharedCount: Sendable {
    private let value = Atomic<Int>(0)
    func load() -> Int { value.load(ordering: .relaxed) }
    func store(_ count: Int) { value.store(count, ordering: .relaxed) }
    func add(_ amount: Int) { value.add(amount, ordering: .relaxed) }
}
