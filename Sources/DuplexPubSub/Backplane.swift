public import Duplex

/// Carries channel messages between the server processes that share a set of channels.
///
/// Every message published through any process is delivered to every process's ``Channels``,
/// the publishing one included. An implementation keeps the order of the `publish` calls made
/// from one thread for one channel.
public protocol Backplane: Sendable {
    /// Starts delivering: `deliver` is called for every message published to any channel, in order.
    func start(deliver: @escaping @Sendable (_ channel: String, _ message: WebSocketMessage) -> Void) async throws
    /// Publishes `message` to `channel` in every process. Does not wait; the order of calls is kept.
    func publish(_ message: WebSocketMessage, to channel: String)
    /// Stops delivering and releases what the backplane holds.
    func shutdown() async
    /// Whether the backplane currently reaches the other processes (for a readiness check).
    /// Default `true`: a backplane with nothing to connect to is always connected.
    var isConnected: Bool { get }
}

extension Backplane {
    /// Always `true`.
    public var isConnected: Bool { true }
}
