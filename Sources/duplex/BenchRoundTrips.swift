import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Histogram
import NIOCore

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
    func processCPUSeconds() -> Double {
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

/// The send times of one connection's messages in flight and its round trips so far: what every
/// echo driver keeps, on its connection's event loop.
struct RoundTripClock {
    /// The round trips so far, published every 256 for the progress report.
    let received = SharedCount()
    private var sentAt: [UInt64] = []
    private var head = 0
    private(set) var count = 0
    /// Made by the first send: its buckets take a few hundred KiB, more than a handshake costs, and
    /// a connection of the connect mode sends nothing.
    private var histogram: Histogram<UInt64>?

    /// The round-trip times so far, in nanoseconds.
    var latencies: Histogram<UInt64> { histogram ?? latencyHistogram() }

    /// Notes that a message left now.
    mutating func sent() {
        if histogram == nil { histogram = latencyHistogram() }
        sentAt.append(DispatchTime.now().uptimeNanoseconds)
    }

    /// Records the round trip of the oldest message in flight; false when none was.
    mutating func echoed() -> Bool {
        guard head < sentAt.count else { return false }
        _ = histogram!.record(DispatchTime.now().uptimeNanoseconds - sentAt[head])
        head += 1
        if head > 4096 {
            sentAt.removeFirst(head)
            head = 0
        }
        count += 1
        if count & 255 == 0 { received.store(count) }
        return true
    }
}

/// An echo driver that is a handler of its own channel.
protocol ChannelEchoDriver: AnyObject, SendableMetatype {
    var clock: RoundTripClock { get }
    var running: Bool { get set }
    /// What ended the connection before the run did, if anything did: the run fails with it.
    var failure: (any Error)? { get }
    func start()
}

/// What other threads hold of a driver that owns its channel: it starts it, and at the end stops it
/// and closes the connection.
struct ChannelEchoHandle<Driver: ChannelEchoDriver>: RoundTripHandle {
    let channel: any Channel
    let driver: NIOLoopBound<Driver>
    let received: SharedCount

    /// Made on the channel's event loop.
    init(channel: any Channel, driver: Driver) {
        self.channel = channel
        self.driver = NIOLoopBound(driver, eventLoop: channel.eventLoop)
        self.received = driver.clock.received
    }

    func start() {
        let driver = self.driver
        channel.eventLoop.execute { driver.value.start() }
    }

    func finish() async throws -> (Int, Histogram<UInt64>) {
        let driver = self.driver
        let result = try await channel.eventLoop.submit {
            driver.value.running = false
            if let failure = driver.value.failure { throw failure }
            return (driver.value.clock.count, driver.value.clock.latencies)
        }.get()
        try? await channel.close()
        return result
    }
}
