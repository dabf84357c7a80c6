public import DuplexCompression
public import DuplexCore
public import Logging
public import NIOCore
public import NIOPosix
public import NIOSSL

/// Why a client could not connect.
public enum WebSocketClientError: Error, Sendable, CustomStringConvertible {
    /// The URL is not a valid `ws://` or `wss://` URL.
    case invalidURL(String)
    /// The server did not complete the opening handshake in time.
    case handshakeTimedOut
    /// The server closed the connection before completing the opening handshake.
    case connectionClosedDuringHandshake
    /// The server's response was not valid HTTP.
    case malformedResponse(HTTPParseError)
    /// The server's response failed one of the opening handshake's checks.
    case handshakeFailed(ClientHandshakeError)
    /// The server accepted permessage-deflate with parameters this client did not offer or cannot
    /// honour. The client sent close 1010 with the reason before closing the connection.
    case extensionNegotiationFailed(PerMessageDeflate.NegotiationError)
    /// The codec cannot use the agreed parameters. The client sent close 1011.
    case compressionUnavailable(PerMessageDeflate.CodecError)
    /// The HTTP proxy refused the tunnel, or answered with something else than HTTP.
    case proxyFailed(String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "invalid WebSocket URL: \(url)"
        case .handshakeTimedOut: "opening handshake timed out"
        case .connectionClosedDuringHandshake: "connection closed during the opening handshake"
        case .malformedResponse(let error): "malformed handshake response: \(error)"
        case .handshakeFailed(let error): "handshake failed: \(error)"
        case .extensionNegotiationFailed(let error): "extension negotiation failed: \(error)"
        case .compressionUnavailable(let error): "compression unavailable: \(error)"
        case .proxyFailed(let reason): "proxy: \(reason)"
        }
    }
}

/// A client connection in the async API: its messages, its writer and what the handshake agreed.
public struct WebSocketClientConnection: Sendable {
    /// The messages received.
    public let inbound: WebSocketInbound
    /// Sends messages and closes.
    public let outbound: WebSocketOutbound
    /// The agreed subprotocol and extensions, the request sent, the server's address.
    public let context: WebSocketContext
}

/// Connects to WebSocket servers.
///
/// ```swift
/// let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:8080/")
/// try await ws.outbound.write(.text("hello"))
/// for await message in ws.inbound { print(message.text ?? "") ; break }
/// try await ws.outbound.close()
/// ```
public enum WebSocketClient {
    /// How a client connects. `.init()` is safe against an untrusted server.
    public struct Configuration: Sendable {
        /// Frame and message limits and the close timeout.
        public var connection: Connection.Configuration
        /// Extra request headers (cookies, authorization, Origin …).
        public var headers: HTTPFields
        /// The subprotocols to offer, in order of preference.
        public var subprotocols: [String]
        /// How long TCP connect may take. Default 10 seconds.
        public var connectTimeout: TimeAmount
        /// How long the server has to answer the opening handshake. Default 10 seconds.
        public var handshakeTimeout: TimeAmount
        /// The largest handshake response accepted. Default 16 KiB.
        public var maxHandshakeSize: Int
        /// permessage-deflate to offer, or nil (the default) to offer no compression.
        ///
        /// When the server accepts it, messages of at least ``PerMessageDeflate/Configuration/minimumSize``
        /// bytes are compressed unless sent with `compress: false`. A response the offer does not
        /// allow fails the connection with ``WebSocketClientError/extensionNegotiationFailed(_:)``.
        public var compression: PerMessageDeflate.Configuration?

        /// TLS for `wss://` URLs. Default: swift-nio-ssl's client defaults — the system's trusted
        /// roots, hostname verification, TLS 1.2 or later — with ALPN `http/1.1`. Set
        /// `trustRoots` to trust a private CA.
        public var tls: TLSConfiguration
        /// Pings to find a dead server (protocol or application pings), and application pings to
        /// answer. Default ``Heartbeat/none``.
        public var heartbeat: Heartbeat
        /// How to reach the server: directly, through an HTTP proxy (`CONNECT`), or as the
        /// environment says. Default ``ProxySetting/environment``.
        public var proxy: ProxySetting

        /// Where a client's connections go.
        public enum ProxySetting: Sendable, Hashable {
            /// Straight to the server.
            case direct
            /// Through the proxy that `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` name, unless `NO_PROXY`
            /// exempts the host; loopback hosts always go direct. See ``HTTPProxy/fromEnvironment(for:environment:)``.
            case environment
            /// Through this proxy.
            case proxy(HTTPProxy)
        }

        /// Creates a configuration; every parameter has a documented default.
        public init(connection: Connection.Configuration = .init(), headers: HTTPFields = [:], subprotocols: [String] = [],
                    connectTimeout: TimeAmount = .seconds(10), handshakeTimeout: TimeAmount = .seconds(10),
                    maxHandshakeSize: Int = 16 * 1024, compression: PerMessageDeflate.Configuration? = nil,
                    tls: TLSConfiguration = WebSocketClient.defaultTLS, heartbeat: Heartbeat = .none,
                    proxy: ProxySetting = .environment) {
            self.proxy = proxy
            self.heartbeat = heartbeat
            self.tls = tls
            self.compression = compression
            self.connection = connection
            self.headers = headers
            self.subprotocols = subprotocols
            self.connectTimeout = connectTimeout
            self.handshakeTimeout = handshakeTimeout
            self.maxHandshakeSize = maxHandshakeSize
        }
    }

    /// The default TLS for `wss://`: system roots, hostname verification, TLS 1.2+, ALPN `http/1.1`.
    public static var defaultTLS: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        return tls
    }

    /// Connects and returns the connection in the async API once the handshake succeeds.
    /// - Throws: ``WebSocketClientError`` for a bad URL or a failed handshake, or the socket error.
    public static func connect(to url: String, configuration: Configuration = .init(),
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "duplex.client")) async throws -> WebSocketClientConnection {
        let eventLoop = eventLoopGroup.next()
        let promise = eventLoop.makePromise(of: WebSocketClientConnection.self)
        try await connect(to: WebSocketURL(url), configuration: configuration, eventLoop: eventLoop, logger: logger,
                          onOpen: { connection in
                              let (inbound, outbound, context) = AsyncBridge.attach(to: connection)
                              promise.succeed(WebSocketClientConnection(inbound: inbound, outbound: outbound, context: context))
                          },
                          onFailure: { promise.fail($0) })
        return try await promise.futureResult.get()
    }

    /// Connects, runs `body` with the connection, and closes it (1000) when `body` returns.
    /// - Throws: what ``connect(to:configuration:eventLoopGroup:logger:)`` throws, or what `body` throws.
    public static func withConnection<Result: Sendable>(
        to url: String, configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "duplex.client"),
        _ body: (WebSocketInbound, WebSocketOutbound, WebSocketContext) async throws -> Result
    ) async throws -> Result {
        let connection = try await connect(to: url, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            let result = try await body(connection.inbound, connection.outbound, connection.context)
            _ = try? await connection.outbound.close()
            return result
        } catch {
            _ = try? await connection.outbound.close(code: .internalError)
            throw error
        }
    }

    /// Connects with the callback API: `onOpen` runs on the connection's event loop once the handshake
    /// succeeds; set the connection's callbacks there.
    /// - Throws: ``WebSocketClientError`` for a bad URL or a failed handshake, or the socket error.
    public static func connect(to url: String, configuration: Configuration = .init(),
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "duplex.client"),
                               onOpen: @escaping @Sendable (WebSocketConnection) -> Void) async throws {
        let eventLoop = eventLoopGroup.next()
        let promise = eventLoop.makePromise(of: Void.self)
        try await connect(to: WebSocketURL(url), configuration: configuration, eventLoop: eventLoop, logger: logger,
                          onOpen: { connection in
                              onOpen(connection)
                              promise.succeed()
                          },
                          onFailure: { promise.fail($0) })
        try await promise.futureResult.get()
    }

    private static func connect(to url: WebSocketURL, configuration: Configuration, eventLoop: any EventLoop, logger: Logger,
                                onOpen: @escaping @Sendable (WebSocketConnection) -> Void,
                                onFailure: @escaping @Sendable (any Error) -> Void) async throws {
        try await connect(to: url, configuration: configuration, eventLoop: eventLoop, logger: logger,
                          onOpen: onOpen, onFailure: onFailure).get()
    }

    /// Connects without Swift concurrency, for code that stays on the event loop (the load
    /// generator): `onOpen` runs on `eventLoop` once the handshake succeeds; `onFailure` runs once
    /// if the connection or the handshake fails.
    /// - Returns: a future of the TCP connection (not of the handshake); it fails with what
    ///   `onFailure` also gets.
    package static func connect(to url: WebSocketURL, configuration: Configuration, eventLoop: any EventLoop, logger: Logger,
                                onOpen: @escaping @Sendable (WebSocketConnection) -> Void,
                                onFailure: @escaping @Sendable (any Error) -> Void) -> EventLoopFuture<Void> {
        let tls: NIOSSLContext?
        do {
            tls = url.isSecure ? try NIOSSLContext(configuration: configuration.tls) : nil
        } catch {
            onFailure(error)
            return eventLoop.makeFailedFuture(error)
        }
        let handshake = ClientHandshake(host: url.hostHeader, target: url.target, headers: configuration.headers,
                                        subprotocols: configuration.subprotocols,
                                        extensions: configuration.compression.map { [PerMessageDeflate.offer(configuration: $0)] } ?? [])
        var logger = logger
        logger[metadataKey: "ws.url"] = "\(url)"
        let settings = WebSocketChannelHandler.Settings(
            role: .client(handshake: handshake, onFailure: onFailure), connection: configuration.connection,
            compression: configuration.compression, heartbeat: configuration.heartbeat,
            handshakeTimeout: configuration.handshakeTimeout, maxHandshakeSize: configuration.maxHandshakeSize,
            logger: logger, onOpen: onOpen)
        let proxy: HTTPProxy? =
            switch configuration.proxy {
            case .direct: nil
            case .proxy(let proxy): proxy
            case .environment: HTTPProxy.fromEnvironment(for: "\(url)", environment: ProcessEnvironment.variables)
            }
        /// The handlers that speak to the server: TLS if secure, then the WebSocket handler.
        @Sendable func addHandlers(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
            if let tls {
                // SNI takes a name, never an IP literal.
                let isLiteral = (try? SocketAddress(ipAddress: url.host, port: 0)) != nil
                try pipeline.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: isLiteral ? nil : url.host))
            }
            try pipeline.addHandler(WebSocketChannelHandler(settings))
        }
        let host = proxy?.host ?? url.host, port = proxy?.port ?? url.port
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    guard let proxy else { return try addHandlers(pipeline) }
                    let authority = url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
                    try pipeline.addHandler(ProxyConnectHandler(
                        proxy: proxy, authority: authority, timeout: configuration.handshakeTimeout,
                        onTunnel: { context in try addHandlers(context.pipeline.syncOperations) }, onFailure: onFailure))
                }
            }
        // An IP literal needs no resolver: connect at once, without a getaddrinfo round trip on a
        // thread pool and a Happy Eyeballs race of one address.
        let connected: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            connected = bootstrap.connect(to: address)
        } else {
            connected = bootstrap.connect(host: host, port: port)
        }
        return connected.map { _ in () }.flatMapErrorThrowing { error in
            onFailure(error)
            throw error
        }
    }
}
