import Metrics

/// The PostgreSQL backplane's instruments, through swift-metrics.
///
/// | Metric | Type | Meaning |
/// |---|---|---|
/// | `duplex_backplane_published_total` | counter | messages this process wrote to PostgreSQL |
/// | `duplex_backplane_delivered_total` | counter | messages read from PostgreSQL and handed to the channels, `path` live or resumed |
/// | `duplex_backplane_dropped_total` | counter | messages lost, `reason` queue_full (outage longer than the queue) or expired (deleted before read) |
/// | `duplex_backplane_reconnects_total` | counter | connections re-established after a loss, `role` publisher or listener |
/// | `duplex_backplane_connected` | gauge | 1 when both connections are up, else 0 |
/// | `duplex_backplane_queued` | gauge | messages waiting to be written |
/// | `duplex_backplane_lag_seconds` | timer | from `publish` in one process to delivery in this one |
struct BackplaneMetrics: Sendable {
    let published = Counter(label: "duplex_backplane_published_total")
    let deliveredLive = Counter(label: "duplex_backplane_delivered_total", dimensions: [("path", "live")])
    let deliveredResumed = Counter(label: "duplex_backplane_delivered_total", dimensions: [("path", "resumed")])
    let droppedQueueFull = Counter(label: "duplex_backplane_dropped_total", dimensions: [("reason", "queue_full")])
    let droppedExpired = Counter(label: "duplex_backplane_dropped_total", dimensions: [("reason", "expired")])
    let publisherReconnects = Counter(label: "duplex_backplane_reconnects_total", dimensions: [("role", "publisher")])
    let listenerReconnects = Counter(label: "duplex_backplane_reconnects_total", dimensions: [("role", "listener")])
    let connected = Gauge(label: "duplex_backplane_connected")
    let queued = Gauge(label: "duplex_backplane_queued")
    let lag = Timer(label: "duplex_backplane_lag_seconds")
}
