import Foundation
import PostgresNIO
import Synchronization

extension PostgresBackplane {
    /// The publishing connection: writes the queue in order, one row at a time, reconnecting as
    /// long as the backplane runs. A row whose insert failed stays first in the queue and is
    /// written again (the unique key makes a repeat of a committed insert a no-op).
    func runPublisher() async {
        var wakeUps = wake.makeAsyncIterator()
        var attempt = 0
        var connectedBefore = false
        while !Task.isCancelled {
            do {
                let connection = try await connect(role: "publisher")
                if connectedBefore { metrics.publisherReconnects.increment() }
                connectedBefore = true
                logger.info("backplane publisher connected", metadata: ["table": "\(sql.table)"])
                setConnected(publisher: true)
                attempt = 0
                let done = await publishQueue(on: connection, wakeUps: &wakeUps)
                try? await connection.close()
                if done { break }
            } catch {
                if Task.isCancelled { break }
                logger.notice("backplane publisher cannot connect", metadata: ["error": "\(String(reflecting: error))"])
            }
            setConnected(publisher: false)
            await backOff(attempt: attempt)
            attempt += 1
        }
        setConnected(publisher: false)
    }

    /// Writes the queue until the backplane shuts down (true) or the connection fails (false).
    private func publishQueue(on connection: PostgresConnection, wakeUps: inout AsyncStream<Void>.Iterator) async -> Bool {
        var nextCleanup = ContinuousClock.now
        while !Task.isCancelled {
            do {
                if ContinuousClock.now >= nextCleanup {
                    try await execute(sql.deleteOlder(thanSeconds: seconds(configuration.retention)), on: connection)
                    nextCleanup = .now + cleanupInterval
                }
                guard let next = state.withLock({ $0.queueHead < $0.queue.count ? $0.queue[$0.queueHead] : nil }) else {
                    if await wakeUps.next() == nil, state.withLock({ $0.queuedCount == 0 }) { return true }
                    continue
                }
                try await execute(sql.insert(origin: origin, next), on: connection)
                let queued = state.withLock { state -> Int in
                    state.queueHead += 1
                    if state.queueHead >= 1024, state.queueHead * 2 >= state.queue.count {
                        state.queue.removeFirst(state.queueHead)
                        state.queueHead = 0
                    }
                    return state.queuedCount
                }
                metrics.published.increment()
                metrics.queued.record(queued)
            } catch {
                if !Task.isCancelled {
                    logger.notice("backplane publisher lost its connection", metadata: ["error": "\(String(reflecting: error))"])
                }
                return false
            }
        }
        return true
    }
}

extension PostgresBackplane {
    /// Runs a statement that returns nothing of interest. postgres-nio never answers a query sent
    /// on a connection that has closed meanwhile, so this checks first, and gives up after 10
    /// seconds (closing the connection), leaving the stuck request behind.
    func execute(_ query: PostgresQuery, on connection: PostgresConnection) async throws {
        guard !connection.isClosed else { throw PostgresBackplaneError.connectionClosed }
        let logger = self.logger
        let resumed = Mutex(false)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let finish = { @Sendable (result: Result<Void, any Error>) in
                guard resumed.withLock({ done in defer { done = true }; return !done }) else { return }
                continuation.resume(with: result)
            }
            Task {
                do {
                    try await connection.query(query, logger: logger)
                    finish(.success(()))
                } catch {
                    finish(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: .seconds(10))
                finish(.failure(PostgresBackplaneError.connectionClosed))
                try? await connection.close()
            }
        }
    }
}

/// A duration in seconds.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
