public import DuplexCompression
public import DuplexCore
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import NIOPosix
public import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket server on SwiftNIO.
///
/// ```swift
/// let server = WebSocketServer(configuration: .init(host: "127.0.0.1", port: 8080), handler: .callbacks { ws in
///     ws.onMessage = { ws, message in try? ws.send(message) }
/// })
/// try await server.run()   // or hand it to a ServiceGroup
/// ```
///
/// As a swift-service-lifecycle `Service`, ``run()`` serves until graceful shutdown is triggered, then
/// stops accepting, sends close 1001 to every connection, and waits at most
/// ``Configuration/shutdownGracePeriod`` before closing what remains.
public final class WebSocketServer: Service, Sendable {
    /// Where and how the server listens. `.init()` listens on 127.0.0.1:8080 with safe limits.
    public struct Configuration: Sendable {
        /// The address to bind. Default `127.0.0.1`.
        public var host: String
        /// The port to bind; 0 picks a free one (see ``WebSocketServer/localAddress``). Default 8080.
        public var port: Int
        /// Frame and message limits and the close timeout of each connection.
        public var connection: Connection.Configuration
        /// How the subprotocol is chosen from a client's offer. Default: none is selected.
        public var subprotocols: SubprotocolPolicy
        /// Which web origins may connect; others get 403 with the reason. Default
        /// ``OriginPolicy/sameOrigin``: browsers on a page of this host and port, and clients that
        /// send no `Origin`. See `Docs/Security.md`.
        public var origins: OriginPolicy
        /// How long a client has to complete its opening handshake. Default 10 seconds.
        public var handshakeTimeout: TimeAmount
        /// The largest opening request accepted (431 beyond it). Default 16 KiB.
        public var maxHandshakeSize: Int
        /// How long shutdown waits for connections to finish their closing handshake. Default 5 seconds.
        public var shutdownGracePeriod: TimeAmount
        /// The listen backlog. Default 1024.
        public var backlog: Int32
        /// Limits against denial of service: connections in all and per address, message rates,
        /// buffered bytes, idle time. Default ``ServerLimits/init(maxConnections:maxConnectionsPerAddress:retryAfter:messageRate:byteRate:maxBufferedBytes:idleTimeout:)``.
        public var limits: ServerLimits
        /// permessage-deflate to accept when a client offers it, or nil (the default) to accept none.
        ///
        /// Compression trades memory and CPU for bandwidth: with ``PerMessageDeflate/Configuration/init()``
        /// each compressed connection holds about 300 KiB of zlib state, with
        /// ``PerMessageDeflate/Configuration/lowMemory`` about 26 KiB. The inflated size of every
        /// message counts against ``Connection/Configuration/maxMessageSize`` while it is inflated.
        public var compression: PerMessageDeflate.Configuration?
        /// TLS for `wss://`, or nil (the default) for plain `ws://`.
        public var tls: ServerTLS?
        /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` fields name the client. A
        /// connection from anywhere else is its own client, whatever those fields say. The client
        /// address is what per-address limits count, the admission hook sees and
        /// ``WebSocketConnection/remoteAddress`` gives. Default: none.
        public var trustedProxies: [IPNetwork]
        /// The application's say on each connection before it opens; nil (the default) admits
        /// every request that passes the server's own checks.
        public var admission: AdmissionHook?
        /// Pings to find dead clients, and application pings to answer (browsers'). Default
        /// ``Heartbeat/none``. See `Docs/Heartbeats.md`.
        public var heartbeat: Heartbeat
        /// Answers plain HTTP requests on the same port (a page, `/healthz`, `/metrics`); nil (the
        /// default), or a nil response, answers them with 426 Upgrade Required.
        public var http: HTTPResponder?

        /// Creates a configuration; every parameter has a documented default.
        public init(host: String = "127.0.0.1", port: Int = 8080, connection: Connection.Configuration = .init(),
                    subprotocols: SubprotocolPolicy = .none, origins: OriginPolicy = .sameOrigin, handshakeTimeout: TimeAmount = .seconds(10),
                    maxHandshakeSize: Int = 16 * 1024, shutdownGracePeriod: TimeAmount = .seconds(5),
                    backlog: Int32 = 1024, limits: ServerLimits = .init(), compression: PerMessageDeflate.Configuration? = nil,
                    tls: ServerTLS? = nil, trustedProxies: [IPNetwork] = [], admission: AdmissionHook? = nil,
                    heartbeat: Heartbeat = .none, http: HTTPResponder? = nil) {
            self.http = http
            self.heartbeat = heartbeat
            self.tls = tls
            self.trustedProxies = trustedProxies
            self.admission = admission
            self.limits = limits
            self.compression = compression
            self.host = host
            self.port = port
            self.connection = connection
            self.subprotocols = subprotocols
            self.origins = origins
            self.handshakeTimeout = handshakeTimeout
            self.maxHandshakeSize = maxHandshakeSize
            self.shutdownGracePeriod = shutdownGracePeriod
            self.backlog = backlog
        }
    }

    /// How the application handles each connection.
    public enum Handler: Sendable {
        /// Called on the connection's event loop once it is open; set its callbacks there.
        case callbacks(@Sendable (WebSocketConnection) -> Void)
        /// Called in a task of its own once the connection is open. When it returns the connection is
        /// closed with 1000 (1011 if it throws) unless it was closed already.
        case async(@Sendable (WebSocketInbound, WebSocketOutbound, WebSocketContext) async throws -> Void)
    }

    /// The server's settings.
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let handler: Handler
    private let state = NIOLockedValueBox(ServerState())
    private let gate: ServerGate
    private let metrics = ServerMetrics()

    private struct ServerState {
        var channel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var shuttingDown = false
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    /// Creates a server; nothing happens until ``start()`` or ``run()``.
    /// - Parameters:
    ///   - configuration: where to listen and the limits to apply.
    ///   - eventLoopGroup: the loops to serve on. Default: NIO's shared group, one loop per core.
    ///   - logger: where to log; connections add their own metadata.
    ///   - handler: the application.
    public init(configuration: Configuration = .init(), eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "duplex.server"), handler: Handler) {
        self.configuration = configuration
        self.gate = ServerGate(limits: configuration.limits, trustedProxies: configuration.trustedProxies, hook: configuration.admission, http: configuration.http)
        self.group = eventLoopGroup
        self.logger = logger
        self.handler = handler
    }

    /// The address the server listens on, once started.
    public var localAddress: SocketAddress? {
        state.withLockedValue { $0.channel?.localAddress }
    }

    /// The number of open connections (including those still in their opening handshake).
    public var connectionCount: Int {
        state.withLockedValue { $0.connections.count }
    }

    /// Binds and starts accepting connections.
    /// - Returns: the bound address (useful with port 0).
    /// - Throws: the socket error when the address cannot be bound.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let settings = WebSocketChannelHandler.Settings(
            role: .server(origins: configuration.origins, subprotocols: configuration.subprotocols, gate: gate), connection: configuration.connection,
            compression: configuration.compression, sharedStreams: SharedStreamsByLoop(),
            guards: WebSocketConnection.Guards(configuration.limits), heartbeat: configuration.heartbeat, metrics: metrics,
            handshakeTimeout: configuration.handshakeTimeout, maxHandshakeSize: configuration.maxHandshakeSize,
            logger: logger, corksLastWrite: configuration.tls == nil,
            onOpen: { [handler] connection in Self.open(connection, handler: handler) })
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // No Nagle delay for small frames. Linux copies TCP_NODELAY from the listening socket to
            // every accepted one, which saves a system call per connection; elsewhere each child
            // sets it below.
            .serverChannelOption(.socketOption(.tcp_nodelay), value: 1)
        if let deferAccept = Self.deferAccept {
            // A client speaks first (its request, or a TLS ClientHello): the kernel hands over a
            // connection once its first bytes are in, so accepting it and reading the request take
            // one turn of the loop instead of two. One that stays silent waits in the kernel, up to
            // the handshake timeout, and is then accepted and timed out like any other.
            let seconds = max(1, (configuration.handshakeTimeout.nanoseconds + 999_999_999) / 1_000_000_000)
            bootstrap = bootstrap.serverChannelOption(deferAccept, value: SocketOptionValue(min(seconds, Int64(Int32.max))))
        }
        let channel = try await bootstrap
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.eventLoop.makeCompletedFuture {
                    guard self.register(channel) else { throw ChannelError.ioOnClosedChannel }
                    let (admission, counted) = self.admit(channel)
                    self.releaseOnClose(channel, counted: counted)
                    // Set here, synchronously: as child channel options each would cost a future.
                    if let options = channel.syncOptions {
                        #if !os(Linux)
                        try options.setOption(.socketOption(.tcp_nodelay), value: 1)
                        #endif
                        try options.setOption(.maxMessagesPerRead, value: 16)
                        // NIO keeps a channel's last read buffer for the next read, sized by this
                        // allocator. Its default starts at 2 KiB, which an idle connection then holds
                        // for nothing; 512 bytes fits most opening handshakes, and the buffer still
                        // doubles on every full read, up to 256 KiB (see `receiveBuffers`).
                        try options.setOption(.recvAllocator, value: Self.receiveBuffers)
                    }
                    if let tls = self.configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(tls.makeHandler())
                    }
                    try channel.pipeline.syncOperations.addHandler(WebSocketChannelHandler(settings, admission: admission))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLockedValue { $0.channel = channel }
        logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return channel.localAddress!
    }

    /// Serves until graceful shutdown (or cancellation), then shuts down as ``shutdown()`` does.
    public func run() async throws {
        if state.withLockedValue({ $0.channel == nil }) { try await start() }
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops accepting, sends close 1001 (going away) to every connection, waits for them at most
    /// ``Configuration/shutdownGracePeriod``, then closes what remains.
    public func shutdown() async {
        let (listener, connections) = state.withLockedValue { state in
            state.shuttingDown = true
            return (state.channel, Array(state.connections.values))
        }
        try? await listener?.close()
        logger.info("shutting down", metadata: ["connections": "\(connections.count)"])
        for channel in connections {
            channel.eventLoop.execute {
                guard let handler = try? channel.pipeline.syncOperations.handler(type: WebSocketChannelHandler.self) else { return }
                handler.goAway()
            }
        }
        let grace = configuration.shutdownGracePeriod
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitUntilDrained() }
            group.addTask { try? await Task.sleep(nanoseconds: UInt64(max(0, grace.nanoseconds))) }
            await group.next()
            group.cancelAll()
        }
        let remaining = state.withLockedValue { Array($0.connections.values) }
        for channel in remaining { channel.close(promise: nil) }
        await waitUntilDrained()
    }

    private func waitUntilDrained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLockedValue { state in
                if state.connections.isEmpty { return true }
                state.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// `TCP_DEFER_ACCEPT` on Linux, nil elsewhere.
    private static let deferAccept: ChannelOptions.Types.SocketOption? = {
        #if os(Linux)
        ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_DEFER_ACCEPT)))
        #else
        nil
        #endif
    }()

    /// Read buffers start at 512 bytes and double on each full read up to 256 KiB. Only a connection
    /// that keeps its reads full grows its buffer, and it keeps the largest one until it closes.
    /// NIO's own limit is 64 KiB. A client that keeps 64 KiB of frames in flight sends a few bytes
    /// more than that, which then take two reads and split the last frame across them. With the
    /// larger limit, one read a round (measured in `Docs/PERFORMANCE.md`).
    private static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 256 << 10)

    /// Adds a connection to those shutdown waits for, unless the server is shutting down.
    private func register(_ channel: any Channel) -> Bool {
        state.withLockedValue { state in
            if state.shuttingDown { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    /// Once the channel closes: forgets it, releases its count when `counted` (with its address key,
    /// or nil for a trusted proxy's connection), and wakes shutdown when it was the last. One callback
    /// for both, as every connection registers it.
    private func releaseOnClose(_ channel: any Channel, counted: ClientAddressKey??) {
        let id = ObjectIdentifier(channel)
        channel.closeFuture.whenComplete { [weak self, counter = gate.counter] _ in
            if let counted { counter.release(counted) }
            guard let self else { return }
            let waiters = self.state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                state.connections[id] = nil
                guard state.connections.isEmpty else { return [] }
                defer { state.drained.removeAll() }
                return state.drained
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Counts a new connection against the limits, for its TCP peer's address unless that is a
    /// trusted proxy; says how it was counted, or the refusal it gets once its request arrives, and
    /// what to release when it closes (nil when it was not counted).
    private func admit(_ channel: any Channel) -> (WebSocketChannelHandler.EarlyAdmission, counted: ClientAddressKey??) {
        let peer = channel.remoteAddress
        let key = gate.isTrustedProxy(peer) ? nil : ClientAddressKey(peer)
        switch gate.counter.admit(key) {
        case .admitted:
            return (.counted(peerAddress: key != nil), .some(key))
        case .serverFull:
            logger.notice("refusing a connection: server full", metadata: ["limit": "\(configuration.limits.maxConnections)"])
            return (.refused(status: 503, reason: "the server is at its connection limit"), nil)
        case .addressFull(let key):
            logger.notice("refusing a connection: address over its limit", metadata: ["address": "\(key)"])
            return (.refused(status: 429, reason: "too many connections from \(key)"), nil)
        }
    }

    private static func open(_ connection: WebSocketConnection, handler: Handler) {
        switch handler {
        case .callbacks(let onOpen):
            onOpen(connection)
        case .async(let body):
            let (inbound, outbound, context) = AsyncBridge.attach(to: connection)
            Task {
                do {
                    try await body(inbound, outbound, context)
                    _ = try? await outbound.close(code: .normalClosure)
                } catch {
                    context.logger.debug("handler threw", metadata: ["error": "\(error)"])
                    _ = try? await outbound.close(code: .internalError, reason: "handler error")
                }
            }
        }
    }
}
