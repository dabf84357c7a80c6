import Foundation

/// Runs `body`, which blocks (reads a pipe to its end, waits for a process), on a thread of its own
/// and returns its result. Run on the cooperative pool, which has as many threads as cores (two on
/// CI), such a wait would stall every other test's tasks meanwhile, and their timeouts would fire.
public func runBlocking<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async -> Result {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}
