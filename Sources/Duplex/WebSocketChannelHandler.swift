import DuplexCompression
import DuplexCore
import Logging
import NIOCore

/// The one handler in a WebSocket channel's pipeline: it parses the opening handshake (server or
/// client side), then drives a ``WebSocketConnection``. Doing both in one handler means no pipeline
/// surgery at upgrade time and no bytes lost between the handshake and the first frame.
final class WebSocketChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What one end needs to open a connection.
    struct Settings: Sendable {
        /// What differs between the two ends.
        enum Role: Sendable {
            /// Accepting: which origins may connect, and how to pick a subprotocol.
            case server(origins: OriginPolicy, subprotocols: SubprotocolPolicy)
            /// Connecting: the request to send, and who hears of a failed handshake.
            case client(handshake: ClientHandshake, onFailure: @Sendable (any Error) -> Void)
        }

        var role: Role
        var connection: Connection.Configuration
        /// permessage-deflate as this end wants it, or nil to neither offer nor accept it.
        var compression: PerMessageDeflate.Configuration?
        /// zlib streams shared per event loop by directions without context takeover; nil gives
        /// each connection its own.
        var sharedStreams: SharedStreamsByLoop? = nil
        /// What each open connection enforces (a server's rates, buffered bytes, idle time).
        var guards: WebSocketConnection.Guards = .none
        var handshakeTimeout: TimeAmount
        var maxHandshakeSize: Int
        var logger: Logger
        /// Called on the event loop once the connection is open.
        var onOpen: @Sendable (WebSocketConnection) -> Void
    }

    private enum State {
        case handshaking(HTTPHeadParser, ByteBuffer)
        case open(WebSocketConnection)
        case done
    }

    /// An HTTP refusal a server gives instead of any handshake, once the request head has arrived.
    struct Refusal {
        var status: Int
        var reason: String
        var retryAfter: TimeAmount
    }

    private let settings: Settings
    private let refusal: Refusal?
    private var state: State
    private var handshakeTimer: Scheduled<Void>?

    init(_ settings: Settings, refusal: Refusal? = nil) {
        self.settings = settings
        self.refusal = refusal
        state = .handshaking(HTTPHeadParser(maxHeadSize: settings.maxHandshakeSize), ByteBuffer())
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard handshakeTimer == nil, case .handshaking = state else { return }
        if case .client(let handshake, _) = settings.role {
            var buffer = context.channel.allocator.buffer(capacity: 512)
            handshake.request.write(into: &buffer)
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        }
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: settings.handshakeTimeout) { [self] in
            guard case .handshaking = state else { return }
            handshakeFailed(context: context, error: WebSocketClientError.handshakeTimedOut, response: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        switch state {
        case .handshaking:
            state = .done
            if case .client(_, let onFailure) = settings.role { onFailure(WebSocketClientError.connectionClosedDuringHandshake) }
        case .open(let connection):
            connection.receiveEOF()
            state = .done
        case .done:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .handshaking:
            handshakeFailed(context: context, error: error, response: nil)
        case .open(let connection):
            connection.logger.debug("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        case .done:
            break
        }
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        switch state {
        case .open(let connection):
            connection.isReading = true
            connection.receive(bytes)
        case .handshaking(var parser, var buffer):
            state = .done  // drop the buffer's other reference so appending does not copy
            buffer.writeImmutableBuffer(bytes)
            handshakeRead(context: context, parser: &parser, buffer: &buffer)
        case .done:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .open(let connection) = state {
            connection.isReading = false
            connection.readComplete()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .open(let connection) = state { connection.writabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if case .open(let connection) = state, connection.readingPaused {
            connection.readPending = true
            return
        }
        context.read()
    }

    // MARK: Handshake

    private func handshakeRead(context: ChannelHandlerContext, parser: inout HTTPHeadParser, buffer: inout ByteBuffer) {
        switch settings.role {
        case .server(let origins, let subprotocols):
            let head: HTTPRequestHead?
            do {
                head = try parser.parseRequest(&buffer)
            } catch {
                return handshakeFailed(context: context, error: error,
                                       response: ServerHandshake.response(rejecting: error.status, reason: error.reason))
            }
            guard let head else {
                state = .handshaking(parser, buffer)
                return
            }
            if let refusal {
                var response = ServerHandshake.response(rejecting: refusal.status, reason: refusal.reason)
                response.head.headers.add("Retry-After", String(max(1, refusal.retryAfter.nanoseconds / 1_000_000_000)))
                return handshakeFailed(context: context, error: HandshakeRefused(reason: refusal.reason), response: response)
            }
            accept(context: context, head: head, leftover: buffer, origins: origins, subprotocols: subprotocols)
        case .client(let handshake, _):
            let head: HTTPResponseHead?
            do {
                head = try parser.parseResponse(&buffer)
            } catch {
                return handshakeFailed(context: context, error: WebSocketClientError.malformedResponse(error), response: nil)
            }
            guard let head else {
                state = .handshaking(parser, buffer)
                return
            }
            let accepted: ClientHandshake.Accepted
            do {
                accepted = try handshake.validate(head)
            } catch {
                return handshakeFailed(context: context, error: WebSocketClientError.handshakeFailed(error), response: nil)
            }
            handshakeTimer?.cancel()
            let codec: (any MessageCompression)?
            do {
                codec = try clientCompression(accepted: accepted.extensions)
            } catch {
                return failNegotiation(context: context, error: error)
            }
            let connection = WebSocketConnection(
                context: context, connection: Connection(role: .client, configuration: settings.connection, compression: codec),
                subprotocol: accepted.subprotocol, extensions: accepted.extensions,
                request: handshake.request, logger: settings.logger)
            open(connection, leftover: buffer, onOpen: settings.onOpen)
        }
    }

    private func accept(context: ChannelHandlerContext, head: HTTPRequestHead, leftover: ByteBuffer,
                        origins: OriginPolicy, subprotocols: SubprotocolPolicy) {
        let request: ServerHandshake.Request
        do {
            request = try ServerHandshake.validate(head)
        } catch {
            return handshakeFailed(context: context, error: error, response: ServerHandshake.response(rejecting: error))
        }
        do {
            try origins.check(origin: request.origin, host: request.host)
        } catch {
            return handshakeFailed(context: context, error: error,
                                   response: ServerHandshake.response(rejecting: 403, reason: error.description))
        }
        var logger = settings.logger
        logger[metadataKey: "ws.peer"] = "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"
        let subprotocol = subprotocols.select(offered: request.subprotocols)
        let (extensions, codec) = serverCompression(context: context, offers: request.extensions, logger: logger)
        let response = ServerHandshake.response(accepting: request, subprotocol: subprotocol, extensions: extensions)
        var buffer = context.channel.allocator.buffer(capacity: 256)
        response.write(into: &buffer)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
        handshakeTimer?.cancel()
        let connection = WebSocketConnection(
            context: context, connection: Connection(role: .server, configuration: settings.connection, compression: codec),
            subprotocol: subprotocol, extensions: extensions, request: head, logger: logger, guards: settings.guards)
        open(connection, leftover: leftover, onOpen: settings.onOpen)
    }

    /// The server's answer to the client's extension offers, and the codec it agreed to.
    private func serverCompression(context: ChannelHandlerContext, offers: [WebSocketExtension], logger: Logger) -> ([WebSocketExtension], (any MessageCompression)?) {
        guard let configuration = settings.compression,
              let (response, parameters) = PerMessageDeflate.negotiate(offers: offers, configuration: configuration)
        else { return ([], nil) }
        do {
            let shared = settings.sharedStreams?.streams(on: context.eventLoop)
            return ([response], try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true,
                                                                configuration: configuration, sharedStreams: shared))
        } catch {
            // Parameters the codec cannot use: go on without compression rather than refuse the client.
            logger.warning("permessage-deflate declined", metadata: ["error": "\(error)"])
            return ([], nil)
        }
    }

    /// The codec for what the server accepted, or nil when it accepted no compression.
    /// - Throws: ``WebSocketClientError/extensionNegotiationFailed(_:)`` or
    ///   ``WebSocketClientError/compressionUnavailable(_:)``.
    private func clientCompression(accepted: [WebSocketExtension]) throws(WebSocketClientError) -> (any MessageCompression)? {
        guard let configuration = settings.compression else { return nil }
        let parameters: PerMessageDeflate.Parameters?
        do {
            parameters = try PerMessageDeflate.accept(response: accepted, configuration: configuration)
        } catch {
            throw .extensionNegotiationFailed(error)
        }
        guard let parameters else { return nil }
        do {
            return try PerMessageDeflate.makeCodec(parameters: parameters, isServer: false, configuration: configuration)
        } catch {
            throw .compressionUnavailable(error)
        }
    }

    /// Fails a connection whose HTTP handshake succeeded but whose extensions the client cannot use:
    /// a close frame (1010, or 1011 when zlib failed) with the reason, then TCP close (RFC 6455 §7.1.7).
    private func failNegotiation(context: ChannelHandlerContext, error: WebSocketClientError) {
        state = .done
        var connection = Connection(role: .client)
        let code: CloseCode = if case .compressionUnavailable = error { .internalError } else { .mandatoryExtension }
        let reason: String =
            switch error {
            case .extensionNegotiationFailed(let negotiation): negotiation.description
            default: "compression unavailable"
            }
        try? connection.close(code: code, reason: reason, now: .now())
        var buffer = context.channel.allocator.buffer(capacity: 128)
        while let frame = connection.nextOutboundFrame() {
            frame.header.write(into: &buffer)
            buffer.writeImmutableBuffer(frame.payload)
        }
        if case .client(_, let onFailure) = settings.role { onFailure(error) }
        context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func open(_ connection: WebSocketConnection, leftover: ByteBuffer, onOpen: (WebSocketConnection) -> Void) {
        state = .open(connection)
        connection.isReading = true
        connection.startGuards()
        onOpen(connection)
        if leftover.readableBytes > 0 { connection.receive(leftover) }
    }

    private func handshakeFailed(context: ChannelHandlerContext, error: any Error,
                                 response: (head: HTTPResponseHead, body: ByteBuffer)?) {
        handshakeTimer?.cancel()
        state = .done
        switch settings.role {
        case .server:
            settings.logger.debug("handshake refused", metadata: ["error": "\(error)"])
            if let (head, body) = response {
                var buffer = context.channel.allocator.buffer(capacity: 256 + body.readableBytes)
                head.write(into: &buffer)
                buffer.writeImmutableBuffer(body)
                context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .client(_, let onFailure):
            onFailure(error)
            context.close(promise: nil)
        }
    }
}

/// A handshake refused by a server limit, for the log.
struct HandshakeRefused: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

extension WebSocketChannelHandler {
    /// Server shutdown: close 1001 to an open connection, drop one still in its handshake.
    func goAway() {
        switch state {
        case .open(let connection):
            try? connection.close(code: .goingAway, reason: "server shutting down")
        case .handshaking, .done:
            break
        }
    }
}
