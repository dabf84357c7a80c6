import Duplex
import DuplexPubSub
import Foundation
import PostgresNIO

extension PostgresBackplane {
    /// The listening connection: LISTENs, catches up on what it missed while disconnected, then
    /// delivers every notified row, reconnecting as long as the backplane runs.
    func runListener(deliver: @escaping @Sendable (String, WebSocketMessage) -> Void) async {
        var delivered = DeliveredIDs(capacity: 16_384)
        var attempt = 0
        var connectedBefore = false
        while !Task.isCancelled {
            do {
                let connection = try await connect(role: "listener")
                do {
                    try await listen(on: connection, connectedBefore: &connectedBefore, attempt: &attempt,
                                     delivered: &delivered, deliver: deliver)
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { break }
                logger.notice("backplane listener disconnected", metadata: ["error": "\(String(reflecting: error))"])
            }
            setConnected(listener: false)
            await backOff(attempt: attempt)
            attempt += 1
        }
        setConnected(listener: false)
    }

    /// LISTENs on `connection`, catches up, then delivers what is notified until the connection fails.
    private func listen(on connection: PostgresConnection, connectedBefore: inout Bool, attempt: inout Int,
                        delivered: inout DeliveredIDs, deliver: @escaping @Sendable (String, WebSocketMessage) -> Void) async throws {
        try await connection.listen(on: sql.table) { notifications in
            if delivered.last == nil {
                // The first start: only what comes from now on.
                let rows = try await connection.query(sql.lastID, logger: logger)
                for try await id in rows.decode(Int64.self) { delivered.start(after: id) }
            } else {
                try await catchUp(on: connection, delivered: &delivered, deliver: deliver)
            }
            if connectedBefore { metrics.listenerReconnects.increment() }
            connectedBefore = true
            logger.info("backplane listener connected", metadata: ["table": "\(sql.table)"])
            setConnected(listener: true)
            attempt = 0
            for try await notification in notifications {
                guard let id = Int64(notification.payload), !delivered.contains(id) else { continue }
        guard !connection.isClosed else { throw PostgresBackplaneError.connectionClosed }
                let rows = try await connection.query(sql.message(id: id), logger: logger)
                var found = false
                for try await row in rows.decode((Int64, String, Int16, ByteBuffer, Int64).self) {
                    found = true
                    hand(row, path: .live, delivered: &delivered, deliver: deliver)
                }
                if !found { metrics.droppedExpired.increment() }
            }
        }
    }

    /// Delivers the rows committed while the listener was away, oldest first. It looks back a
    /// margin of ids before the last one delivered, for rows whose id was taken before that one's
    /// but that committed after it; those already delivered are skipped.
    private func catchUp(on connection: PostgresConnection, delivered: inout DeliveredIDs,
                         deliver: @Sendable (String, WebSocketMessage) -> Void) async throws {
        let after = max(0, (delivered.last ?? 0) - 1_000)
        let rows = try await connection.query(sql.messages(after: after), logger: logger)
        for try await row in rows.decode((Int64, String, Int16, ByteBuffer, Int64).self) where delivered.isMissed(row.0) {
            hand(row, path: .resumed, delivered: &delivered, deliver: deliver)
        }
    }

    private enum Path { case live, resumed }

    private func hand(_ row: (Int64, String, Int16, ByteBuffer, Int64), path: Path, delivered: inout DeliveredIDs,
                      deliver: (String, WebSocketMessage) -> Void) {
        let (id, channel, kind, payload, publishedAt) = row
        delivered.insert(id)
        deliver(channel, WebSocketMessage(kind: kind == 0 ? .text : .binary, data: payload))
        (path == .live ? metrics.deliveredLive : metrics.deliveredResumed).increment()
        let lag = Int64(Date().timeIntervalSince1970 * 1e9) - publishedAt
        metrics.lag.recordNanoseconds(max(0, lag))
    }
}

/// The ids a listener delivered lately (a bounded set), the highest of them, and the last id when
/// it first started.
struct DeliveredIDs {
    private var ids: Set<Int64> = []
    private var order: [Int64] = []
    private var oldest = 0
    private var floor: Int64 = 0
    let capacity: Int
    /// The highest id delivered or, before any, the last id when the listener first started.
    private(set) var last: Int64?

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The listener starts with the rows up to `id` behind it: it delivers none of them.
    mutating func start(after id: Int64) {
        floor = id
        last = id
    }

    /// Whether `id` was delivered lately.
    func contains(_ id: Int64) -> Bool { ids.contains(id) }

    /// Whether a row is one to catch up on: not delivered, and not there before the first start.
    /// (A notified row is delivered even below that, as its commit came after the LISTEN.)
    func isMissed(_ id: Int64) -> Bool { id > floor && !ids.contains(id) }

    mutating func insert(_ id: Int64) {
        guard ids.insert(id).inserted else { return }
        last = max(last ?? id, id)
        if order.count < capacity {
            order.append(id)
        } else {
            ids.remove(order[oldest])
            order[oldest] = id
            oldest = (oldest + 1) % capacity
        }
    }
}
