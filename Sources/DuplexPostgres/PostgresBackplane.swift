public import Duplex
public import DuplexPubSub
import Foundation
public import Logging
import PostgresNIO
import Synchronization

/// A ``Backplane`` over PostgreSQL, so that several server processes share their channels.
///
/// ```swift
/// let backplane = PostgresBackplane(configuration: try .init(url: "postgres://duplex@db.internal/app"))
/// let channels = Channels(backplane: backplane)
/// try await channels.start()
/// ```
///
/// Every published message is a row in a table (``Configuration/table``), and the insert sends a
/// NOTIFY with the row's id; every process LISTENs and reads the rows it is told about. A payload of
/// any size arrives (NOTIFY itself carries at most 8000 bytes), text stays text and binary binary.
///
/// Each process has two connections: one publishes, one listens. `publish` never waits: it puts the
/// message on a queue that the publishing connection writes one row at a time, in order, so the
/// messages of one process arrive in the order it published them, in every process (including
/// itself: local members also get their messages through PostgreSQL).
///
/// When PostgreSQL cannot be reached, both connections retry by themselves with a backoff that
/// doubles from ``Configuration/initialReconnectDelay`` to ``Configuration/maxReconnectDelay``.
/// Meanwhile:
/// - messages published in this process wait in the queue (up to ``Configuration/maxQueuedMessages``;
///   beyond it they are dropped and counted) and are written, in order, once it reconnects;
/// - on reconnecting, the listener reads the rows it missed (those committed while it was away and
///   still within ``Configuration/retention``), oldest first, before the new ones, skipping any it
///   already delivered.
///
/// So within the retention time nothing is lost or repeated across an outage; messages older than
/// that are lost (at most once). A message reaches the members connected when it is delivered;
/// a member that connects later does not get it.
public final class PostgresBackplane: Backplane {
    /// How it connects, and its bounds.
    public let configuration: Configuration
    let logger: Logger
    let sql: BackplaneSQL
    let metrics = BackplaneMetrics()
    /// This process among the publishers: with a sequence number, the unique key of a row.
    let origin = UUID().uuidString
    let state = Mutex(State())
    let wake: AsyncStream<Void>
    let wakeContinuation: AsyncStream<Void>.Continuation

    struct State {
        var queue: [PendingMessage] = []
        var queueHead = 0
        var nextSequence: Int64 = 1
        var publisherConnected = false
        var listenerConnected = false
        var tasks: [Task<Void, Never>] = []
        var stopped = false

        var queuedCount: Int { queue.count - queueHead }
    }

    /// - Parameters:
    ///   - configuration: Where PostgreSQL is, and the backplane's bounds.
    ///   - logger: Connection losses and reconnections are logged at notice and info.
    /// - Throws: ``PostgresBackplaneError/invalidTable(_:)`` for a bad table name.
    public init(configuration: Configuration, logger: Logger = Logger(label: "duplex.backplane")) throws {
        self.configuration = configuration
        self.logger = logger
        sql = try BackplaneSQL(table: configuration.table)
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Connects both connections (retrying in the background if PostgreSQL is not there yet) and
    /// starts delivering. Returns at once.
    public func start(deliver: @escaping @Sendable (String, WebSocketMessage) -> Void) async throws {
        let publisher = Task { await self.runPublisher() }
        let listener = Task { await self.runListener(deliver: deliver) }
        let cleanup = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.cleanupInterval)
                self.wakeContinuation.yield()
            }
        }
        state.withLock { $0.tasks = [publisher, listener, cleanup] }
    }

    /// Queues `message` for every process. Never waits; drops (and counts) the message when the
    /// queue already holds ``Configuration/maxQueuedMessages``.
    public func publish(_ message: WebSocketMessage, to channel: String) {
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        let queued = state.withLock { state -> Int? in
            guard !state.stopped, state.queuedCount < configuration.maxQueuedMessages else { return nil }
            state.queue.append(PendingMessage(sequence: state.nextSequence, channel: channel, message: message, publishedAt: now))
            state.nextSequence += 1
            return state.queuedCount
        }
        guard let queued else {
            metrics.droppedQueueFull.increment()
            return
        }
        metrics.queued.record(queued)
        wakeContinuation.yield()
    }

    /// Writes what is still queued (for up to a second, if connected), then closes both connections.
    public func shutdown() async {
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            state.stopped = true
            return state.tasks
        }
        wakeContinuation.finish()
        tasks.last?.cancel()
        if let publisher = tasks.first {
            let timeout = Task {
                try? await Task.sleep(for: .seconds(1))
                publisher.cancel()
            }
            await publisher.value
            timeout.cancel()
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Whether both connections are up.
    public var isConnected: Bool {
        state.withLock { $0.publisherConnected && $0.listenerConnected }
    }

    /// Messages waiting to be written to PostgreSQL.
    public var queuedMessages: Int {
        state.withLock { $0.queuedCount }
    }

    var cleanupInterval: Duration {
        max(.milliseconds(100), min(.seconds(10), configuration.retention / 4))
    }

    func setConnected(publisher: Bool? = nil, listener: Bool? = nil) {
        let both = state.withLock { state -> Bool in
            if let publisher { state.publisherConnected = publisher }
            if let listener { state.listenerConnected = listener }
            return state.publisherConnected && state.listenerConnected
        }
        metrics.connected.record(both ? 1 : 0)
    }

    /// Opens a connection, named for its role in `pg_stat_activity.application_name`.
    func connect(role: String) async throws -> PostgresConnection {
        var connection = configuration.connection
        connection.options.additionalStartupParameters.append(("application_name", "duplex-\(role)-\(origin.prefix(8))"))
        let opened = try await PostgresConnection.connect(configuration: connection, id: role == "publisher" ? 1 : 2, logger: logger)
        do {
            try await opened.query(sql.createTable, logger: logger)
        } catch let error as PSQLError where ["23505", "42P07"].contains(error.serverInfo?[.sqlState]) {
            // Another process made the table at the same moment: it is there now.
        } catch {
            try? await opened.close()
            throw error
        }
        return opened
    }

    /// Sleeps before reconnection attempt `attempt` (0 first): the initial delay doubled, capped,
    /// with up to a quarter of random jitter.
    func backOff(attempt: Int) async {
        var delay = configuration.initialReconnectDelay
        for _ in 0..<min(attempt, 30) where delay < configuration.maxReconnectDelay { delay *= 2 }
        delay = min(delay, configuration.maxReconnectDelay)
        try? await Task.sleep(for: delay + delay * Double.random(in: 0...0.25))
    }
}
