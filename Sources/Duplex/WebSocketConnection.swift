public import DuplexCore
public import Logging
public import NIOCore
import Synchronization

/// One open WebSocket connection, bound to its event loop: the callback API, for the hot path.
///
/// Every callback runs on ``eventLoop``, and every method must be called there (from a callback, or
/// through `eventLoop.execute`). Sending costs no allocation beyond the frame itself and no task switch:
/// frames are gathered and flushed once per read cycle or event-loop tick. For use from Swift
/// concurrency, see ``WebSocketInbound`` and ``WebSocketOutbound``.
///
/// ```swift
/// let server = WebSocketServer(configuration: .init(port: 8080), handler: .callbacks { ws in
///     ws.onMessage = { ws, message in try? ws.send(message) }   // echo
/// })
/// ```
public final class WebSocketConnection {
    /// The event loop this connection lives on.
    public let eventLoop: any EventLoop
    /// Whether this is the server's or the client's end.
    public let role: Connection.Role
    /// The subprotocol agreed in the opening handshake, if any.
    public let subprotocol: String?
    /// The extensions agreed in the opening handshake.
    public let extensions: [WebSocketExtension]
    /// The opening request: the client's (on a server), or the one sent (on a client).
    public let request: HTTPRequestHead
    /// The peer's address: on a server, the client's — the TCP peer, or behind a trusted proxy
    /// (``WebSocketServer/Configuration/trustedProxies``) the address the proxy forwarded.
    public let remoteAddress: SocketAddress?
    /// A logger with this connection's id (`ws.id`) and peer address (`ws.peer`) in its metadata.
    ///
    /// It is made when asked for, so that an idle connection keeps no metadata of its own; setting it
    /// keeps the logger set.
    public var logger: Logger {
        get { customLogger ?? Self.logger(settings.logger, id: id, peer: remoteAddress) }
        set { customLogger = newValue }
    }

    /// Called for each whole message received.
    public var onMessage: ((WebSocketConnection, WebSocketMessage) -> Void)?
    /// Called for each ping received (the pong has already been sent).
    public var onPing: ((WebSocketConnection, ByteBuffer) -> Void)?
    /// Called for each pong received.
    public var onPong: ((WebSocketConnection, ByteBuffer) -> Void)?
    /// Called once, when the connection has closed, with how it closed.
    public var onClose: ((WebSocketConnection, CloseInfo) -> Void)?
    /// Called when the socket's send buffer crosses its high (false) or low (true) water mark.
    public var onWritabilityChanged: ((WebSocketConnection, Bool) -> Void)?

    /// How the connection closed, once it has.
    public private(set) var closeInfo: CloseInfo?

    var connection: Connection
    private let context: ChannelHandlerContext
    /// The connection's channel, for the library's tests of socket options.
    package var channel: any Channel { context.channel }
    private var output: ByteBuffer
    /// The last buffer for the channel, held back until the next one or the flush: the flush's
    /// promise then rides on it instead of on an empty marker buffer (an entry in the channel's
    /// queue, and an empty iovec in the system call, per flush).
    private var heldWrite: ByteBuffer?
    private var flushScheduled = false
    private var closeTimer: Scheduled<Void>?
    private var writabilityWaiters: [EventLoopPromise<Void>] = []
    var isReading = false
    var readingPaused = false
    var readPending = false
    private(set) var bytesQueued = 0 {
        didSet { queuedBytes.value.store(bytesQueued, ordering: .relaxed) }
    }
    /// ``bytesQueued``, readable from any thread (for ``WebSocketOutbound/bufferedAmount``). It
    /// leaves out what a read cycle's callbacks sent until the cycle's events are handled
    /// (``deferralLimit``); sends from tasks go to the channel at once.
    let queuedBytes = QueuedBytes()
    private var bytesSinceFlush = 0

    /// Payloads up to this size are copied into the per-tick output buffer; larger ones are written
    /// as they are, as one buffer with their header when they have room for it in front (see
    /// ``FrameHeader/prepend(to:)``), or else beside it.
    private static let coalesceLimit = 512
    /// What a read cycle's sends may leave in the protocol core before they go to the channel.
    ///
    /// A message sent while a read is being handled (an echo, a reply) is written to the channel
    /// once the read's events are handled rather than at once: by then the application has dropped
    /// the message it received, so the payload is the only user of its storage and its header can
    /// be written in front of it (one buffer to the socket instead of two). Past this many bytes the
    /// frames go to the channel at once, so that ``isWritable`` lags by no more than this.
    private static let deferralLimit = 256 << 10

    /// What a server enforces on each connection (rates, buffered bytes, idle time).
    struct Guards {
        var messageRate: RateLimit?
        var byteRate: RateLimit?
        var maxBufferedBytes: Int?
        var idleTimeout: TimeAmount?

        static let none = Guards()

        init(messageRate: RateLimit? = nil, byteRate: RateLimit? = nil, maxBufferedBytes: Int? = nil, idleTimeout: TimeAmount? = nil) {
            self.messageRate = messageRate
            self.byteRate = byteRate
            self.maxBufferedBytes = maxBufferedBytes
            self.idleTimeout = idleTimeout
        }

        init(_ limits: ServerLimits) {
            self.init(messageRate: limits.messageRate, byteRate: limits.byteRate,
                      maxBufferedBytes: limits.maxBufferedBytes, idleTimeout: limits.idleTimeout)
        }
    }

    /// What every connection of this server (or client) shares: limits, heartbeat, metrics, logger.
    private let settings: WebSocketChannelHandler.Settings
    /// The number of this connection in the logs (`ws.id`).
    private let id: UInt64
    private var customLogger: Logger?
    private var tally = TrafficTally()
    /// Library parts that must hear of the close (channel membership), besides the application.
    package var closeObservers: [(WebSocketConnection) -> Void] = []
    private var pingTimer: Scheduled<Void>?
    private var pingDeadline: Scheduled<Void>?
    /// Whether the connection is being given up (a heartbeat timed out): TCP closes at once.
    private var abandoning = false
    private var messageBucket: TokenBucket?
    private var byteBucket: TokenBucket?
    private var lastReceived = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var rateExceeded = false

    init(context: ChannelHandlerContext, connection: Connection, subprotocol: String?, extensions: [WebSocketExtension],
         request: HTTPRequestHead, remoteAddress: SocketAddress?, id: UInt64, settings: WebSocketChannelHandler.Settings) {
        self.settings = settings
        self.id = id
        settings.metrics?.connectionsOpen.increment()
        let guards = settings.guards
        let now = NIODeadline.now()
        self.messageBucket = guards.messageRate.map { TokenBucket($0, now: now) }
        self.byteBucket = guards.byteRate.map { TokenBucket($0, now: now) }
        self.eventLoop = context.eventLoop
        self.context = context
        self.connection = connection
        self.role = connection.role
        self.subprotocol = subprotocol
        self.extensions = extensions
        self.request = request
        self.remoteAddress = remoteAddress
        self.output = ByteBuffer()  // allocated on first use: an idle connection holds no output memory
    }

    /// `base` with a connection's id and peer address in its metadata.
    static func logger(_ base: Logger, id: UInt64, peer: SocketAddress?) -> Logger {
        var logger = base
        logger[metadataKey: "ws.id"] = "\(id)"
        logger[metadataKey: "ws.peer"] = "\(peer.map { "\($0)" } ?? "?")"
        return logger
    }

    /// The state, as a browser's `readyState`.
    public var readyState: ReadyState {
        closeInfo != nil ? .closed : connection.readyState
    }

    /// Whether the socket accepts more data without queueing past its high water mark. Stop sending
    /// when it is false, and resume in ``onWritabilityChanged``.
    public var isWritable: Bool { context.channel.isWritable }

    /// Bytes accepted by ``send(_:)`` and not yet written to the socket.
    public var bufferedAmount: Int { bytesQueued + connection.queuedOutboundBytes }

    // MARK: Sending

    /// Sends a message.
    ///
    /// From a callback during a read (``onMessage``, say), the message's frames go to the channel
    /// once the read's events are handled, in order with everything else sent; ``bufferedAmount``
    /// counts them at once.
    /// - Parameters:
    ///   - message: The message.
    ///   - compress: Whether to compress it when permessage-deflate was negotiated; pass `false` for
    ///     data that is already compressed (images, archives) to save the CPU. Default `true`.
    /// - Throws: ``ConnectionError/notOpen(_:)`` once closing or closed.
    public func send(_ message: WebSocketMessage, compress: Bool = true) throws(ConnectionError) {
        eventLoop.preconditionInEventLoop()
        if let limit = settings.guards.maxBufferedBytes, readyState == .open, bufferedAmount + message.data.readableBytes > limit {
            logger.notice("closing a slow consumer", metadata: ["buffered": "\(bufferedAmount)"])
            settings.metrics?.slowConsumers.increment()
            try? close(code: .policyViolation, reason: "slow consumer")
            throw .bufferLimitExceeded(limit: limit)
        }
        try connection.send(message, compress: compress)
        tally.messagesOut += 1
        tally.bytesOut += message.data.readableBytes
        // During a read the frames go to the channel once its events are handled (deferralLimit).
        if !isReading || connection.queuedOutboundBytes >= Self.deferralLimit { writeOutbound() }
    }

    /// Sends a text message.
    /// - Throws: ``ConnectionError/notOpen(_:)`` once closing or closed.
    public func send(text: String) throws(ConnectionError) {
        try send(.text(text))
    }

    /// Sends a binary message.
    /// - Throws: ``ConnectionError/notOpen(_:)`` once closing or closed.
    public func send(binary: ByteBuffer) throws(ConnectionError) {
        try send(.binary(binary))
    }

    /// Sends a ping with up to 125 bytes of payload.
    /// - Throws: ``ConnectionError/notOpen(_:)`` or ``ConnectionError/controlPayloadTooLong(_:)``.
    public func sendPing(_ payload: ByteBuffer = ByteBuffer()) throws(ConnectionError) {
        eventLoop.preconditionInEventLoop()
        try connection.sendPing(payload)
        writeOutbound()
    }

    /// Starts the closing handshake. The connection closes when the peer answers, or after the close
    /// timeout. Does nothing when already closing or closed.
    /// - Throws: ``ConnectionError/invalidCloseCode(_:)`` or ``ConnectionError/closeReasonTooLong(_:)``.
    public func close(code: CloseCode = .normalClosure, reason: String = "") throws(ConnectionError) {
        eventLoop.preconditionInEventLoop()
        guard connection.readyState == .open, closeInfo == nil else { return }
        try connection.close(code: code, reason: reason, now: .now())
        writeOutbound()
        // The peer's close frame must be read even if the application stopped consuming.
        resumeReading()
        if let deadline = connection.closeDeadline {
            closeTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                connection.closeTimeoutExpired(now: .now())
                processEvents()
            }
        }
    }

    /// Stops reading from the socket (inbound backpressure): no more messages arrive until
    /// ``resumeReading()``. TCP flow control then slows the peer down. Ignored once closing, when the
    /// peer's close frame has to be read.
    public func pauseReading() {
        guard readyState == .open else { return }
        readingPaused = true
    }

    /// Resumes reading after ``pauseReading()``.
    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        if readPending {
            readPending = false
            context.read()
        }
    }

    /// A future that succeeds once the socket is writable (at once when it is), or fails when the
    /// connection closes first.
    public func whenWritable() -> EventLoopFuture<Void> {
        if closeInfo != nil { return eventLoop.makeFailedFuture(ConnectionError.notOpen(.closed)) }
        if context.channel.isWritable { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        writabilityWaiters.append(promise)
        return promise.futureResult
    }

    // MARK: Driven by the channel handler

    func receive(_ bytes: ByteBuffer) {
        if settings.guards.idleTimeout != nil || settings.heartbeat.pingInterval != nil { lastReceived = .now() }
        connection.receive(bytes)
        processEvents()
    }

    /// Starts the idle timer and the heartbeat, as configured; called once the connection is open.
    func startGuards() {
        if let interval = settings.heartbeat.pingInterval { schedulePing(in: interval) }
        guard let idle = settings.guards.idleTimeout else { return }
        lastReceived = .now()
        scheduleIdleCheck(at: lastReceived + idle)
    }

    private func schedulePing(in interval: TimeAmount) {
        pingTimer = eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
            guard readyState == .open else { return }
            let sentAt = NIODeadline.now()
            do {
                switch settings.heartbeat.style {
                case .protocolPing: try sendPing()
                case .application(let format): try send(text: format.makePing(ApplicationHeartbeat.nowMilliseconds()))
                }
            } catch {
                return
            }
            // Each ping has its own deadline (with an interval below the timeout, several run).
            pingDeadline = eventLoop.assumeIsolated().scheduleTask(in: settings.heartbeat.pingTimeout) { [self] in
                guard lastReceived < sentAt, closeInfo == nil else { return }
                logger.notice("closing a connection whose peer stopped answering pings")
                settings.metrics?.heartbeatTimeouts.increment()
                abandoning = true
                connection.abandon(code: .internalError, reason: "ping timeout")
                processEvents()
            }
            schedulePing(in: interval)
        }
    }

    /// Answers an application ping, or takes an application pong; returns whether `message` was one.
    private func isHeartbeat(_ message: WebSocketMessage) -> Bool {
        guard settings.heartbeat.answering != nil || settings.heartbeat.pingInterval != nil, let text = message.text else { return false }
        if let format = settings.heartbeat.answering, let value = format.pingValue(text) {
            try? send(text: format.makePong(value))
            return true
        }
        if case .application(let format) = settings.heartbeat.style, format.pongValue(text) != nil { return true }
        return false
    }

    private func scheduleIdleCheck(at deadline: NIODeadline) {
        idleTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard closeInfo == nil, let idle = settings.guards.idleTimeout else { return }
            let due = lastReceived + idle
            if NIODeadline.now() >= due {
                try? close(code: .goingAway, reason: "idle timeout")
            } else {
                scheduleIdleCheck(at: due)
            }
        }
    }

    /// Whether `message` fits the rate limits; when it does not, the connection is closed with 1008.
    private func withinRates(_ message: WebSocketMessage) -> Bool {
        guard messageBucket != nil || byteBucket != nil else { return true }
        let now = NIODeadline.now()
        var exceeded: String?
        if messageBucket?.spend(1, now: now) == false { exceeded = "message rate exceeded" }
        if exceeded == nil, byteBucket?.spend(Double(message.data.readableBytes), now: now) == false { exceeded = "byte rate exceeded" }
        guard let exceeded else { return true }
        rateExceeded = true
        settings.metrics?.rateLimited.increment()
        logger.notice("closing a connection over its rate limit", metadata: ["limit": "\(exceeded)"])
        try? close(code: .policyViolation, reason: exceeded)
        return false
    }

    func receiveEOF() {
        connection.receiveEOF()
        processEvents()
    }

    func writabilityChanged() {
        let writable = context.channel.isWritable
        if !writable { settings.metrics?.highWater.increment() }
        if writable {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for waiter in waiters { waiter.succeed() }
        }
        onWritabilityChanged?(self, writable)
    }

    /// Flushes what this read cycle queued.
    func readComplete() {
        drainOutbound()
        flushOutput()
        tally.report(to: settings.metrics)
    }

    func processEvents() {
        while let event = connection.nextEvent() {
            switch event {
            case .message(let message):
                // Once closing for a rate limit, what the peer sent after it is not delivered.
                tally.messagesIn += 1
                tally.bytesIn += message.data.readableBytes
                guard !rateExceeded, withinRates(message), !isHeartbeat(message) else { continue }
                onMessage?(self, message)
            case .ping(let payload):
                onPing?(self, payload)
            case .pong(let payload):
                onPong?(self, payload)
            case .closed(let info):
                finish(info)
            }
        }
        writeOutbound()
    }

    private func finish(_ info: CloseInfo) {
        guard closeInfo == nil else { return }
        closeInfo = info
        closeTimer?.cancel()
        closeTimer = nil
        idleTimer?.cancel()
        idleTimer = nil
        pingTimer?.cancel()
        pingTimer = nil
        pingDeadline?.cancel()
        pingDeadline = nil
        if let error = info.error {
            logger.debug("failing connection", metadata: ["error": "\(error)"])
        }
        drainOutbound()
        let closesFirst = role == .server || info.code == .abnormalClosure || abandoning
        if closesFirst, info.wasClean, settings.corksLastWrite, bytesSinceFlush > 0, let cork = WebSocketChannelHandler.cork {
            // The reply to the peer's close: hold it in the kernel until TCP closes, which then sends
            // it with the FIN in one segment, two fewer on the wire per connection (no separate FIN,
            // and one acknowledgement less). The close follows the write at once, so nothing waits
            // on the cork. Only after a clean close: a connection failed with bytes still unread
            // closes with a reset, which would drop a corked close frame where it loses nothing
            // that was already sent.
            try? context.channel.syncOptions?.setOption(cork, value: 1)
        }
        let done = flushOutput()
        let context = self.context
        if closesFirst {
            // The server closes TCP first (RFC 6455 §7.1.1).
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            // A client gives the server a moment to close TCP first, then closes it itself.
            let timeout = connection.configuration.closeTimeout
            done.assumeIsolated().whenComplete { _ in
                context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                    context.close(promise: nil)
                }
            }
        }
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for waiter in waiters { waiter.fail(ConnectionError.notOpen(.closed)) }
        tally.report(to: settings.metrics)
        if let metrics = settings.metrics {
            metrics.connectionsOpen.decrement()
            metrics.closed(info.code)
        }
        let observers = closeObservers
        closeObservers.removeAll()
        for observer in observers { observer(self) }
        onClose?(self, info)
        onMessage = nil
        onPing = nil
        onPong = nil
        onClose = nil
        onWritabilityChanged = nil
    }

    /// Sends a message whose frame was encoded once for many connections (a broadcast): `frame` is
    /// the complete unmasked frame of `message`. A connection that compresses sends `message`
    /// through its codec instead; a client masks, so it always does.
    package func send(_ message: WebSocketMessage, encodedAs frame: ByteBuffer) throws(ConnectionError) {
        guard role == .server, extensions.isEmpty else { return try send(message) }
        eventLoop.preconditionInEventLoop()
        guard readyState == .open else { throw .notOpen(readyState) }
        if let limit = settings.guards.maxBufferedBytes, bufferedAmount + frame.readableBytes > limit {
            logger.notice("closing a slow consumer", metadata: ["buffered": "\(bufferedAmount)"])
            settings.metrics?.slowConsumers.increment()
            try? close(code: .policyViolation, reason: "slow consumer")
            throw .bufferLimitExceeded(limit: limit)
        }
        tally.messagesOut += 1
        tally.bytesOut += message.data.readableBytes
        drainOutbound()  // what was sent before goes first
        bytesQueued += frame.readableBytes
        bytesSinceFlush += frame.readableBytes
        holdOutput()
        hold(frame)
        scheduleFlush()
    }

    // MARK: Output

    private func drainOutbound() {
        while var frame = connection.nextOutboundFrame() {
            let size = frame.header.encodedSize + frame.payload.readableBytes
            bytesQueued += size
            bytesSinceFlush += size
            let small = frame.payload.readableBytes <= Self.coalesceLimit
            // A small frame is copied into the output buffer. A large payload goes as it is, with its
            // header in front of it when it has room there, else at the end of the output buffer
            // written just before it.
            if small || !frame.header.prepend(to: &frame.payload) {
                if output.capacity == 0 { output = context.channel.allocator.buffer(capacity: 256) }
                frame.header.write(into: &output)
            }
            if small {
                output.writeImmutableBuffer(frame.payload)
                continue
            }
            holdOutput()
            hold(frame.payload)
        }
    }

    /// Hands the channel the buffer held before, and holds `buffer` instead.
    private func hold(_ buffer: ByteBuffer) {
        if let heldWrite { context.write(NIOAny(heldWrite), promise: nil) }
        heldWrite = buffer
    }

    /// Holds the coalesced frames, if there are some.
    private func holdOutput() {
        guard output.readableBytes > 0 else { return }
        hold(output)
        output = ByteBuffer()
    }

    private func writeOutbound() {
        guard connection.hasOutboundFrames else { return }
        drainOutbound()
        scheduleFlush()
    }

    /// Flushes at the end of the read cycle, or on the next loop tick outside of one.
    private func scheduleFlush() {
        if !isReading && !flushScheduled {
            flushScheduled = true
            eventLoop.assumeIsolated().execute { [self] in
                flushScheduled = false
                flushOutput()
            }
        }
    }

    @discardableResult
    private func flushOutput() -> EventLoopFuture<Void> {
        guard bytesSinceFlush > 0 else { return eventLoop.makeSucceededVoidFuture() }
        let flushed = bytesSinceFlush
        bytesSinceFlush = 0
        tally.report(to: settings.metrics)
        let promise = eventLoop.makePromise(of: Void.self)
        // The last write carries the promise, which completes once it and everything before it are
        // written. Something is always held here, since bytes were queued since the last flush;
        // the empty buffer is only a fallback.
        holdOutput()
        context.writeAndFlush(NIOAny(heldWrite ?? ByteBuffer()), promise: promise)
        heldWrite = nil
        promise.futureResult.assumeIsolated().whenComplete { [self] _ in
            bytesQueued -= flushed
        }
        return promise.futureResult
    }
}

/// A connection's count of bytes not yet written to its socket, readable from any thread.
final class QueuedBytes: Sendable {
    let value = Atomic<Int>(0)
}
