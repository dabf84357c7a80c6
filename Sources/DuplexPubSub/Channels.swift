public import Duplex
import NIOConcurrencyHelpers
public import NIOCore

/// Named channels: connections join and leave them, the application publishes to them, and every
/// member receives what is published — in every server process that shares the ``Backplane``.
///
/// ```swift
/// let channels = Channels()              // in-process; Channels(backplane: PostgresBackplane(…)) to scale out
/// try await channels.start()
/// let server = WebSocketServer(configuration: .init(), handler: .callbacks { ws in
///     channels.join(ws, "room:42")
///     ws.onMessage = { _, message in channels.publish(message, to: "room:42") }
/// })
/// ```
///
/// A published message is framed once and the same bytes are written to every member that does not
/// compress (members with permessage-deflate compress it on their own). Each member's writes go
/// through its own outbound limits, so a slow member is closed for being slow (1008) without
/// delaying the others. Messages one thread publishes to one channel arrive in that order at every
/// member. Delivery is at most once: a member that is not connected when a message is delivered does
/// not get it later.
public final class Channels: Sendable {
    /// What happened to a channel's membership in this process.
    public struct PresenceEvent: Sendable, Hashable {
        public enum Change: Sendable, Hashable { case joined, left }
        /// The channel.
        public let channel: String
        /// Joined or left.
        public let change: Change
        /// The member's address.
        public let remoteAddress: SocketAddress?
        /// The channel's members in this process after the change.
        public let members: Int
    }

    private struct Member: Sendable {
        let eventLoop: any EventLoop
        let connection: NIOLoopBound<WebSocketConnection>
        let remoteAddress: SocketAddress?
    }

    private struct Membership {
        var byChannel: [String: [ObjectIdentifier: Member]] = [:]
        var byConnection: [ObjectIdentifier: Set<String>] = [:]
    }

    /// The backplane that carries messages between processes.
    public let backplane: any Backplane
    private let membership = NIOLockedValueBox(Membership())
    private let onPresence: (@Sendable (PresenceEvent) -> Void)?

    /// - Parameters:
    ///   - backplane: Default ``InProcessBackplane``.
    ///   - onPresence: Called (on the member's event loop) when a connection joins or leaves a channel.
    public init(backplane: any Backplane = InProcessBackplane(), onPresence: (@Sendable (PresenceEvent) -> Void)? = nil) {
        self.backplane = backplane
        self.onPresence = onPresence
    }

    /// Starts receiving from the backplane; call before publishing.
    public func start() async throws {
        try await backplane.start { [weak self] channel, message in self?.deliver(message, to: channel) }
    }

    /// Stops the backplane.
    public func shutdown() async {
        await backplane.shutdown()
    }

    /// Adds `connection` to `channel`; it leaves every channel when it closes. Call on the
    /// connection's event loop (from its callbacks).
    public func join(_ connection: WebSocketConnection, _ channel: String) {
        connection.eventLoop.preconditionInEventLoop()
        guard connection.readyState == .open else { return }
        let id = ObjectIdentifier(connection)
        let member = Member(eventLoop: connection.eventLoop, connection: NIOLoopBound(connection, eventLoop: connection.eventLoop),
                            remoteAddress: connection.remoteAddress)
        let (joined, first, count) = membership.withLockedValue { membership -> (Bool, Bool, Int) in
            guard membership.byChannel[channel, default: [:]].updateValue(member, forKey: id) == nil else {
                return (false, false, membership.byChannel[channel]?.count ?? 0)
            }
            let first = membership.byConnection[id] == nil
            membership.byConnection[id, default: []].insert(channel)
            return (true, first, membership.byChannel[channel]?.count ?? 0)
        }
        guard joined else { return }
        if first { connection.closeObservers.append { [weak self] connection in self?.leaveAll(connection) } }
        onPresence?(PresenceEvent(channel: channel, change: .joined, remoteAddress: connection.remoteAddress, members: count))
    }

    /// Removes `connection` from `channel`.
    public func leave(_ connection: WebSocketConnection, _ channel: String) {
        let id = ObjectIdentifier(connection)
        let remaining = membership.withLockedValue { membership -> Int? in
            guard membership.byChannel[channel]?.removeValue(forKey: id) != nil else { return nil }
            if membership.byChannel[channel]?.isEmpty == true { membership.byChannel[channel] = nil }
            membership.byConnection[id]?.remove(channel)
            return membership.byChannel[channel]?.count ?? 0
        }
        guard let remaining else { return }
        onPresence?(PresenceEvent(channel: channel, change: .left, remoteAddress: connection.remoteAddress, members: remaining))
    }

    private func leaveAll(_ connection: WebSocketConnection) {
        let channels = membership.withLockedValue { $0.byConnection.removeValue(forKey: ObjectIdentifier(connection)) } ?? []
        for channel in channels.sorted() { leave(connection, channel) }
    }

    /// Publishes `message` to every member of `channel`, in every process of the backplane.
    public func publish(_ message: WebSocketMessage, to channel: String) {
        backplane.publish(message, to: channel)
    }

    /// The members of `channel` in this process.
    public func memberCount(of channel: String) -> Int {
        membership.withLockedValue { $0.byChannel[channel]?.count ?? 0 }
    }

    /// The channels with members in this process, and how many each has.
    public var occupancy: [String: Int] {
        membership.withLockedValue { $0.byChannel.mapValues(\.count) }
    }

    /// Fans a message out to this process's members: framed once, one task per event loop.
    private func deliver(_ message: WebSocketMessage, to channel: String) {
        let members = membership.withLockedValue { $0.byChannel[channel].map { Array($0.values) } } ?? []
        guard !members.isEmpty else { return }
        let frame = FrameHeader(fin: true, opcode: message.kind == .text ? .text : .binary, maskingKey: nil,
                                payloadLength: message.data.readableBytes).encoded(payload: message.data)
        let byLoop = Dictionary(grouping: members) { ObjectIdentifier($0.eventLoop) }
        for group in byLoop.values {
            group[0].eventLoop.execute { [frame] in
                for member in group {
                    try? member.connection.value.send(message, encodedAs: frame)
                }
            }
        }
    }
}
