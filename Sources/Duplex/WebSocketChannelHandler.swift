import DuplexCompression
import DuplexCore
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// The one handler in a WebSocket channel's pipeline: it parses the opening handshake (server or
/// client side), then drives a ``WebSocketConnection``. Doing both in one handler means no pipeline
/// surgery at upgrade time and no bytes lost between the handshake and the first frame.
final class WebSocketChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What one end needs to open a connection: one instance for all the connections of a server
    /// (or of a client's connect call), shared by reference so that a connection holds 8 bytes of it.
    final class Settings: Sendable {
        /// What differs between the two ends.
        enum Role: Sendable {
            /// Accepting: which origins may connect, how to pick a subprotocol, and the server's
            /// admission state (counts, trusted proxies, the application's hook).
            case server(origins: OriginPolicy, subprotocols: SubprotocolPolicy, gate: ServerGate)
            /// Connecting: the request to send, and who hears of a failed handshake.
            case client(handshake: ClientHandshake, onFailure: @Sendable (any Error) -> Void)
        }

        let role: Role
        let connection: Connection.Configuration
        /// permessage-deflate as this end wants it, or nil to neither offer nor accept it.
        let compression: PerMessageDeflate.Configuration?
        /// zlib streams shared per event loop by directions without context takeover; nil gives
        /// each connection its own.
        let sharedStreams: SharedStreamsByLoop?
        /// What each open connection enforces (a server's rates, buffered bytes, idle time).
        let guards: WebSocketConnection.Guards
        /// Pings this end sends and application pings it answers.
        let heartbeat: Heartbeat
        /// A server's instruments; nil on a client.
        let metrics: ServerMetrics?
        let handshakeTimeout: TimeAmount
        let maxHandshakeSize: Int
        /// The logger connections log to, before they add their own metadata.
        let logger: Logger
        /// Called on the event loop once the connection is open.
        let onOpen: @Sendable (WebSocketConnection) -> Void
        /// Whether a connection that closes TCP first may cork its socket for its last write (see
        /// ``WebSocketChannelHandler/cork``): only where the channel writes straight to a TCP
        /// socket. Under TLS the close waits for the peer's close_notify, and corked bytes would
        /// wait with it.
        let corksLastWrite: Bool

        init(role: Role, connection: Connection.Configuration, compression: PerMessageDeflate.Configuration?,
             sharedStreams: SharedStreamsByLoop? = nil, guards: WebSocketConnection.Guards = .none,
             heartbeat: Heartbeat = .none, metrics: ServerMetrics? = nil, handshakeTimeout: TimeAmount,
             maxHandshakeSize: Int, logger: Logger, corksLastWrite: Bool = false,
             onOpen: @escaping @Sendable (WebSocketConnection) -> Void) {
            self.role = role
            self.connection = connection
            self.compression = compression
            self.sharedStreams = sharedStreams
            self.guards = guards
            self.heartbeat = heartbeat
            self.metrics = metrics
            self.handshakeTimeout = handshakeTimeout
            self.maxHandshakeSize = maxHandshakeSize
            self.logger = logger
            self.onOpen = onOpen
            self.corksLastWrite = corksLastWrite
        }
    }

    /// `TCP_CORK` on Linux: the kernel holds partial segments until the option is cleared or the
    /// socket closes, and `close` then puts the FIN on the last data segment. Nil elsewhere.
    static let cork: ChannelOptions.Types.SocketOption? = {
        #if os(Linux)
        ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_CORK)))
        #else
        nil
        #endif
    }()

    private enum State {
        case handshaking(HTTPHeadParser, ByteBuffer)
        /// A valid request waits for the application's admission hook; reading is held. (Boxed: the
        /// request is large and this state is rare, so the others do not pay for its size.)
        indirect case admitting(Admitting)
        /// A plain HTTP request waits for the application's responder.
        case answeringHTTP
        case open(WebSocketConnection)
        case done
    }

    struct Admitting {
        var head: HTTPRequestHead
        var request: ServerHandshake.Request
        var clientAddress: SocketAddress?
        /// Bytes that came after the request (a client should send none before the 101).
        var leftover: ByteBuffer
    }

    /// How a server counted a connection when it was accepted, before any request arrived.
    enum EarlyAdmission {
        /// Counted in all, and for its TCP peer's address unless that is a trusted proxy (then it
        /// is counted for the client address the proxy forwards, once the request arrives).
        case counted(peerAddress: Bool)
        /// Over a limit: the request gets this status (503 or 429) with `Retry-After`.
        case refused(status: Int, reason: String)
    }

    /// Numbers connections in the logs (`ws.id`), across every server in the process.
    private static let nextConnectionID = Atomic<UInt64>(0)

    private let settings: Settings
    private let earlyAdmission: EarlyAdmission
    private var state: State
    /// The handshake's deadline: a scheduled callback, which costs the loop no promise or closure
    /// (a server schedules and cancels one for every connection).
    private var handshakeTimer: NIOScheduledCallback?
    private var readHeld = false

    init(_ settings: Settings, admission: EarlyAdmission = .counted(peerAddress: true)) {
        self.settings = settings
        self.earlyAdmission = admission
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
        // Throws only when the loop is shutting down, which closes the channel anyway.
        handshakeTimer = try? context.eventLoop.assumeIsolated().scheduleCallback(
            in: settings.handshakeTimeout, handler: HandshakeDeadline(handler: self, context: context))
    }

    /// Fails a handshake still under way when its time is up.
    private struct HandshakeDeadline: NIOScheduledCallbackHandler {
        let handler: WebSocketChannelHandler
        let context: ChannelHandlerContext

        func handleScheduledCallback(eventLoop: some EventLoop) {
            handler.handshakeTimedOut(context: context)
        }
    }

    private func handshakeTimedOut(context: ChannelHandlerContext) {
        switch state {
        case .handshaking, .admitting, .answeringHTTP: break
        case .open, .done: return
        }
        handshakeFailed(context: context, error: WebSocketClientError.handshakeTimedOut, response: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        switch state {
        case .handshaking, .admitting, .answeringHTTP:
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
        case .handshaking, .admitting, .answeringHTTP:
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
            if buffer.readableBytes == 0 {
                // The usual case, a request in one read: parse the read itself, without a copy.
                buffer = bytes
            } else {
                buffer.writeImmutableBuffer(bytes)
            }
            handshakeRead(context: context, parser: &parser, buffer: &buffer)
        case .admitting(var admitting):
            state = .done
            admitting.leftover.writeImmutableBuffer(bytes)
            guard admitting.leftover.readableBytes <= settings.maxHandshakeSize else {
                return handshakeFailed(context: context, error: HandshakeRefused(kind: .prematureData, reason: "data before the handshake completed"), response: nil)
            }
            state = .admitting(admitting)
        case .answeringHTTP, .done:
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
        switch state {
        case .open(let connection) where connection.readingPaused:
            connection.readPending = true
        case .admitting:
            readHeld = true
        default:
            context.read()
        }
    }

    // MARK: Handshake

    private func handshakeRead(context: ChannelHandlerContext, parser: inout HTTPHeadParser, buffer: inout ByteBuffer) {
        switch settings.role {
        case .server(let origins, let subprotocols, let gate):
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
            if case .refused(let status, let reason) = earlyAdmission {
                return handshakeFailed(context: context, error: HandshakeRefused(kind: status == 503 ? .serverFull : .addressFull, reason: reason),
                                       response: gate.limitResponse(status: status, reason: reason))
            }
            admit(context: context, head: head, leftover: buffer, origins: origins, subprotocols: subprotocols, gate: gate)
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
            handshakeTimer = nil
            let codec: (any MessageCompression)?
            do {
                codec = try clientCompression(accepted: accepted.extensions)
            } catch {
                return failNegotiation(context: context, error: error)
            }
            let connection = WebSocketConnection(
                context: context, connection: Connection(role: .client, configuration: settings.connection, compression: codec),
                subprotocol: accepted.subprotocol, extensions: accepted.extensions,
                request: handshake.request, remoteAddress: context.channel.remoteAddress,
                id: Self.nextConnectionID.add(1, ordering: .relaxed).newValue, settings: settings)
            open(connection, leftover: buffer, onOpen: settings.onOpen)
        }
    }

    /// A server's checks of a complete request, in order: the handshake, the Origin policy, the
    /// client address's connection limit (behind a trusted proxy), then the application's hook.
    private func admit(context: ChannelHandlerContext, head: HTTPRequestHead, leftover: ByteBuffer,
                       origins: OriginPolicy, subprotocols: SubprotocolPolicy, gate: ServerGate) {
        if let http = gate.http, !head.headers.containsToken("Upgrade", "websocket") {
            return answerPlainHTTP(context: context, head: head, responder: http)
        }
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
        let peer = context.channel.remoteAddress
        let client = ForwardedClient.address(peer: peer, headers: head.headers, trusted: gate.trustedProxies)
        let key = ClientAddressKey(client)
        if case .counted(peerAddress: false) = earlyAdmission, let key {
            guard gate.counter.admitAddress(key) else {
                let reason = "too many connections from \(key)"
                return handshakeFailed(context: context, error: HandshakeRefused(kind: .addressFull, reason: reason),
                                       response: gate.limitResponse(status: 429, reason: reason))
            }
            context.channel.closeFuture.whenComplete { [counter = gate.counter] _ in counter.releaseAddress(key) }
        }
        let admitting = Admitting(head: head, request: request, clientAddress: client, leftover: leftover)
        guard let hook = gate.hook else {
            return accept(context: context, admitting, subprotocols: subprotocols)
        }
        state = .admitting(admitting)
        let question = AdmissionRequest(clientAddress: client, peerAddress: peer, head: head,
                                        connectionsFromAddress: gate.counter.count(for: key))
        let promise = context.eventLoop.makePromise(of: AdmissionDecision.self)
        promise.completeWithTask { await hook(question) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] decision in
            guard case .admitting(let admitting) = state else { return }
            switch decision {
            case .accept:
                accept(context: context, admitting, subprotocols: subprotocols)
                // Not inside a read: what onOpen sent waits for no read to complete.
                if case .open(let connection) = state {
                    connection.isReading = false
                    connection.readComplete()
                }
                if readHeld {
                    readHeld = false
                    read(context: context)
                }
            case .reject(let status, let reason):
                handshakeFailed(context: context, error: HandshakeRefused(kind: .admissionRejected, reason: reason),
                                response: ServerGate.response(status: status, reason: reason))
            case .challenge(let challenge):
                handshakeFailed(context: context, error: HandshakeRefused(kind: .challenged, reason: challenge.reason),
                                response: ServerGate.response(status: challenge.status, reason: challenge.reason, headers: challenge.headers))
            }
        }
    }

    /// A plain HTTP request: the application's responder answers it (426 when it declines), then
    /// the connection closes.
    private func answerPlainHTTP(context: ChannelHandlerContext, head: HTTPRequestHead, responder: @escaping HTTPResponder) {
        state = .answeringHTTP
        let promise = context.eventLoop.makePromise(of: HTTPResponse?.self)
        promise.completeWithTask { await responder(head) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] response in
            guard case .answeringHTTP = state else { return }
            state = .done
            handshakeTimer?.cancel()
            let (responseHead, body) = response?.wireForm(method: head.method)
                ?? ServerHandshake.response(rejecting: HandshakeError.notWebSocketUpgrade)
            var buffer = context.channel.allocator.buffer(capacity: 256 + body.readableBytes)
            responseHead.write(into: &buffer)
            buffer.writeImmutableBuffer(body)
            context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func accept(context: ChannelHandlerContext, _ admitting: Admitting, subprotocols: SubprotocolPolicy) {
        let id = Self.nextConnectionID.add(1, ordering: .relaxed).newValue
        let subprotocol = subprotocols.select(offered: admitting.request.subprotocols)
        let (extensions, codec) = serverCompression(context: context, offers: admitting.request.extensions,
                                                    logger: { WebSocketConnection.logger(self.settings.logger, id: id, peer: admitting.clientAddress) })
        let response = ServerHandshake.response(accepting: admitting.request, subprotocol: subprotocol, extensions: extensions)
        var buffer = context.channel.allocator.buffer(capacity: 256)
        response.write(into: &buffer)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
        handshakeTimer?.cancel()
        handshakeTimer = nil
        let connection = WebSocketConnection(
            context: context, connection: Connection(role: .server, configuration: settings.connection, compression: codec),
            subprotocol: subprotocol, extensions: extensions, request: admitting.head, remoteAddress: admitting.clientAddress,
            id: id, settings: settings)
        settings.metrics?.handshakesAccepted.increment()
        open(connection, leftover: admitting.leftover, onOpen: settings.onOpen)
    }

    /// The server's answer to the client's extension offers, and the codec it agreed to.
    private func serverCompression(context: ChannelHandlerContext, offers: [WebSocketExtension], logger: () -> Logger) -> ([WebSocketExtension], (any MessageCompression)?) {
        guard let configuration = settings.compression,
              let (response, parameters) = PerMessageDeflate.negotiate(offers: offers, configuration: configuration)
        else { return ([], nil) }
        do {
            let shared = settings.sharedStreams?.streams(on: context.eventLoop)
            return ([response], try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true,
                                                                configuration: configuration, sharedStreams: shared))
        } catch {
            // Parameters the codec cannot use: go on without compression rather than refuse the client.
            logger().warning("permessage-deflate declined", metadata: ["error": "\(error)"])
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
            frame.header.write(into: &buffer, payload: frame.payload)
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
            settings.metrics?.refused(ServerMetrics.reason(of: error))
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

/// A handshake refused by a server limit or the application, for the log and the metrics.
struct HandshakeRefused: Error, CustomStringConvertible {
    enum Kind: String {
        case serverFull = "server_full"
        case addressFull = "address_full"
        case admissionRejected = "admission"
        case challenged = "challenge"
        case prematureData = "premature_data"
    }

    var kind: Kind
    var reason: String
    var description: String { reason }
}

extension WebSocketChannelHandler {
    /// Server shutdown: close 1001 to an open connection, drop one still in its handshake.
    func goAway() {
        switch state {
        case .open(let connection):
            try? connection.close(code: .goingAway, reason: "server shutting down")
        case .handshaking, .admitting, .answeringHTTP, .done:
            break
        }
    }
}
