import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Histogram

/// A load connection that keeps messages in flight and counts their round trips: an echo driver over
/// WebSocket or over raw TCP.
protocol RoundTripHandle: Sendable {
    /// The round trips so far, updated every so often by the connection's event loop.
    var received: SharedCount { get }
    /// Starts sending.
    func start()
    /// Stops sending and returns the count and the latencies (nanoseconds).
    func finish() async throws -> (Int, Histogram<UInt64>)
}

extension EchoDriver.Handle: RoundTripHandle {}

extension LoadBench {
    /// Starts every connection, reports progress each second for `duration` seconds, then gathers the
    /// counts and latencies into the result rows of `mode`.
    func measureRoundTrips(_ handles: [some RoundTripHandle], mode: String, size: Int) async throws -> [(String, String)] {
        for handle in handles { handle.start() }
        let start = ContinuousClock.now
        let cpuAtStart = processCPUSeconds()
        var lastCount = 0
        for second in 1...Int(duration.rounded(.up)) {
            try await Task.sleep(until: start + .seconds(min(Double(second), duration)))
            let count = handles.reduce(0) { $0 + $1.received.load() }
            FileHandle.standardError.write(Data("bench: \(second) s  \(count - lastCount) msg/s\n".utf8))
            lastCount = count
        }
        let elapsed = ContinuousClock.now - start
        let cpu = processCPUSeconds() - cpuAtStart
        var histogram = latencyHistogram()
        var total = 0
        for handle in handles {
            let (count, latencies) = try await handle.finish()
            total += count
            histogram.add(latencies)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        func micros(_ percentile: Double) -> String { String(format: "%.1f", Double(histogram.valueAtPercentile(percentile)) / 1000) }
        return [
            ("mode", mode), ("connections", "\(handles.count)"), ("in_flight", "\(inFlight)"), ("size", "\(size)"),
            ("seconds", String(format: "%.2f", seconds)), ("messages", "\(total)"),
            ("messages_per_s", String(format: "%.0f", Double(total) / seconds)),
            ("mb_per_s", String(format: "%.2f", Double(total) * Double(size) / seconds / 1e6)),
            ("p50_us", micros(50)), ("p99_us", micros(99)), ("p999_us", micros(99.9)),
            ("bench_cpu_percent", String(format: "%.0f", cpu / seconds * 100)),
        ]
    }

    /// The CPU time (user and system) this process has used so far, in seconds: with the wall time
    /// it tells whether the load generator itself was the limit (near 100% of one core per thread).
    private func processCPUSeconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

/// An empty histogram of round-trip times in nanoseconds, sized for up to a minute from the start: one
/// that grows as it goes resizes on the hot path, and that cost once limited the load generator.
func latencyHistogram() -> Histogram<UInt64> {
    Histogram(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
}
