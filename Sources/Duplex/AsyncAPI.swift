public import DuplexCore
public import Logging
public import NIOCore

/// What the application knows about a connection in the async API.
public struct WebSocketContext: Sendable {
    /// The opening request: the client's (on a server), or the one sent (on a client).
    public let request: HTTPRequestHead
    /// The subprotocol agreed in the opening handshake, if any.
    public let subprotocol: String?
    /// The extensions agreed in the opening handshake.
    public let extensions: [WebSocketExtension]
    /// The peer's address.
    public let remoteAddress: SocketAddress?
    /// A logger with this connection's metadata.
    public let logger: Logger
}

/// The messages a connection receives, as an `AsyncSequence`, with backpressure: when the consumer
/// falls behind by more than a few messages, the connection stops reading from the socket until it
/// catches up. The sequence ends when the connection closes (see ``WebSocketOutbound/closeInfo()``).
public struct WebSocketInbound: AsyncSequence, Sendable {
    /// Each element is one whole message.
    public typealias Element = WebSocketMessage
    typealias Producer = NIOAsyncSequenceProducer<
        WebSocketMessage, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, AsyncBridge.InboundDelegate>

    let producer: Producer

    /// Iterates over the messages.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Producer.AsyncIterator

        /// The next message, or `nil` once the connection has closed.
        public mutating func next() async -> WebSocketMessage? {
            await base.next()
        }
    }

    /// Makes the iterator; iterate once only.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: producer.makeAsyncIterator())
    }
}

/// Sends on a connection from any task, with backpressure: ``write(_:)`` returns once the message is
/// queued and the socket is below its high water mark, so a fast producer waits for a slow peer.
public struct WebSocketOutbound: Sendable {
    let eventLoop: any EventLoop
    let connection: NIOLoopBound<WebSocketConnection>
    let closed: EventLoopFuture<CloseInfo>
    let queued: QueuedBytes

    /// Bytes accepted by ``write(_:compress:)`` and not yet written to the socket (frame headers
    /// included, after compression). Returns to 0 once the socket has taken everything.
    public var bufferedAmount: Int { queued.value.load(ordering: .relaxed) }

    /// Sends a message, waiting while the socket's send buffer is above its high water mark.
    /// - Parameters:
    ///   - message: The message.
    ///   - compress: Whether to compress it when permessage-deflate was negotiated. Default `true`.
    /// - Throws: ``ConnectionError/notOpen(_:)`` once the connection is closing or closed.
    public func write(_ message: WebSocketMessage, compress: Bool = true) async throws {
        let connection = self.connection
        let eventLoop = self.eventLoop
        try await eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            do {
                try connection.value.send(message, compress: compress)
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
            return connection.value.whenWritable()
        }.get()
    }

    /// Sends a ping with up to 125 bytes of payload.
    /// - Throws: ``ConnectionError``.
    public func ping(_ payload: ByteBuffer = ByteBuffer()) async throws {
        let connection = self.connection
        try await eventLoop.submit { try connection.value.sendPing(payload) }.get()
    }

    /// Starts the closing handshake and waits until the connection has closed.
    /// - Returns: how the connection closed.
    /// - Throws: ``ConnectionError/invalidCloseCode(_:)`` or ``ConnectionError/closeReasonTooLong(_:)``.
    @discardableResult
    public func close(code: CloseCode = .normalClosure, reason: String = "") async throws -> CloseInfo {
        let connection = self.connection
        try await eventLoop.submit { try connection.value.close(code: code, reason: reason) }.get()
        return try await closed.get()
    }

    /// Waits until the connection has closed, and tells how.
    public func closeInfo() async -> CloseInfo {
        // `closed` is only ever succeeded.
        (try? await closed.get()) ?? CloseInfo(code: .abnormalClosure, wasClean: false)
    }
}

/// Joins the callback API to the async API: messages go into a backpressured sequence, writes hop
/// to the event loop.
enum AsyncBridge {
    struct InboundDelegate: NIOAsyncSequenceProducerDelegate {
        let eventLoop: any EventLoop
        let connection: NIOLoopBound<WebSocketConnection>

        func produceMore() {
            let connection = self.connection
            eventLoop.execute { connection.value.resumeReading() }
        }

        func didTerminate() {
            // The consumer is gone: keep reading so that pings and the close are still answered.
            let connection = self.connection
            eventLoop.execute { connection.value.resumeReading() }
        }
    }

    /// Takes over `connection`'s callbacks. Must run on its event loop, before any message arrives.
    static func attach(to connection: WebSocketConnection) -> (WebSocketInbound, WebSocketOutbound, WebSocketContext) {
        let eventLoop = connection.eventLoop
        let bound = NIOLoopBound(connection, eventLoop: eventLoop)
        let produced = NIOAsyncSequenceProducer.makeSequence(
            elementType: WebSocketMessage.self,
            backPressureStrategy: NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(lowWatermark: 2, highWatermark: 16),
            finishOnDeinit: false,
            delegate: InboundDelegate(eventLoop: eventLoop, connection: bound))
        let source = produced.source
        let closed = eventLoop.makePromise(of: CloseInfo.self)
        connection.onMessage = { connection, message in
            if source.yield(message) == .stopProducing { connection.pauseReading() }
        }
        connection.onClose = { _, info in
            source.finish()
            closed.succeed(info)
        }
        let context = WebSocketContext(
            request: connection.request, subprotocol: connection.subprotocol, extensions: connection.extensions,
            remoteAddress: connection.remoteAddress, logger: connection.logger)
        return (WebSocketInbound(producer: produced.sequence),
                WebSocketOutbound(eventLoop: eventLoop, connection: bound, closed: closed.futureResult, queued: connection.queuedBytes),
                context)
    }
}
