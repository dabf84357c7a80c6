public import ArgumentParser
import Duplex
import DuplexPostgres
import DuplexPubSub
import Foundation
import Logging
import Metrics
import Prometheus
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a WebSocket echo (and, with --chat, chat) server with a demo page.",
        discussion: "Echoes every text and binary message on any path; with --chat, /chat and /chat/{room} are chat rooms. Plain HTTP on the same port: the demo page at /, /healthz, /readyz, /stats and /metrics (Prometheus). SIGINT or SIGTERM drains the server: close 1001 to every client, then exit."
    )

    @Option(help: ArgumentHelp("A JSON file of options, keyed by their long names: {\"port\": 9000, \"chat\": true}.",
                               discussion: "Precedence: command line, then DUPLEX_SERVE_<OPTION> environment variables (DUPLEX_SERVE_MAX_CONNECTIONS=100; lists comma-separated), then this file (or DUPLEX_SERVE_CONFIG), then the defaults."))
    var config: String?

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Option(name: .customLong("subprotocol"), help: "A subprotocol the server supports (repeatable); it selects the first one in the client's offer that it supports.")
    var subprotocols: [String] = []

    @Option(name: .customLong("allow-origin"), help: ArgumentHelp(
        "A web origin allowed besides the same origin (repeatable): https://app.example.com, https://*.example.com, null, or * for any.",
        discussion: "Browsers on other origins get 403, against cross-site WebSocket hijacking. Clients that send no Origin are accepted."))
    var allowedOrigins: [String] = []

    @Option(help: ArgumentHelp("A PEM file with the TLS certificate chain, leaf first: serve wss:// (with --tls-key).",
                               discussion: "SIGHUP reloads the certificate and key; new connections get them."))
    var tlsCert: String?

    @Option(help: "The PEM file with the TLS private key.")
    var tlsKey: String?

    @Option(name: .customLong("trusted-proxy"), help: ArgumentHelp(
        "A reverse proxy (address or network, repeatable: 10.0.0.0/8, ::1) whose Forwarded / X-Forwarded-For names the client.",
        discussion: "Per-address limits then count the forwarded client. Headers from anyone else are ignored."))
    var trustedProxies: [String] = []

    @Option(help: "The largest message accepted, in bytes (close 1009 beyond).")
    var maxMessageSize = 16 << 20

    @Flag(help: "Do not negotiate permessage-deflate.")
    var noCompression = false

    @Flag(help: ArgumentHelp(
        "Keep the compression context between messages, both ways.",
        discussion: "Better ratios on streams of similar messages, at the cost of zlib state held by every connection (about 300 KiB at the default window and memory level). Without it, connections borrow shared per-thread zlib streams for each message and hold none of their own."))
    var compressionContextTakeover = false

    @Option(help: "The server's compression window, as a power of two: 8 (256 bytes) to 15 (32 KiB).")
    var compressionWindowBits = 15

    @Option(help: "The zlib compression level, 1 (fastest) to 9 (smallest).")
    var compressionLevel = 6

    @Option(help: "The zlib memory level, 1 to 9: hash tables of 2^(level+9) bytes per compressor.")
    var compressionMemoryLevel = 8

    @Option(help: "Open connections in all; beyond it a request gets 503 with Retry-After.")
    var maxConnections = 10_000

    @Option(help: "Open connections from one address (IPv4, or IPv6 /64); beyond it 429 with Retry-After.")
    var maxConnectionsPerAddress = 256

    @Option(help: "Messages a connection may send per second, with bursts of twice that; beyond it close 1008. 0: no limit.")
    var maxMessageRate = 1_000.0

    @Option(help: "Bytes queued for a slow reader before the server closes it with 1008.")
    var maxBufferedBytes = 16 << 20

    @Option(help: "Seconds a connection may receive nothing before close 1001; 0: never.")
    var idleTimeout = 0.0

    @Option(help: "Seconds between protocol pings to each client; 0: none.")
    var pingInterval = 30.0

    @Option(help: "Seconds a client has to show life after a ping before close 1011 \"ping timeout\".")
    var pingTimeout = 10.0

    @Flag(inversion: .prefixedNo, help: #"Answer browsers' {"type":"ping","value":N} with {"pong":"N"} (not echoed)."#)
    var jsonPings = true

    @Flag(help: "Chat rooms at /chat (the lobby) and /chat/{room}: every message goes to every member of the room, the sender included. Echo stays on other paths.")
    var chat = false

    @Option(help: ArgumentHelp(
        "Share channels with other duplex serve processes through PostgreSQL: postgres://user[:password]@host[:port]/database.",
        discussion: "Without it, channels stay in this process. /readyz answers 503 while PostgreSQL cannot be reached. See Docs/Scaling.md."))
    var backplane: String?

    @Option(help: ArgumentHelp("Event-loop threads: each connection lives on one (default: one per CPU core).",
                               discussion: "One thread serves best when the process is pinned to one core."))
    var threads: Int?

    @Option(help: "The log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    /// permessage-deflate as the options ask for it, or nil when it is off.
    var compression: PerMessageDeflate.Configuration? {
        guard !noCompression else { return nil }
        return PerMessageDeflate.Configuration(
            serverMaxWindowBits: compressionWindowBits,
            serverNoContextTakeover: !compressionContextTakeover,
            clientNoContextTakeover: !compressionContextTakeover,
            compressionLevel: compressionLevel,
            memoryLevel: compressionMemoryLevel)
    }

    func validate() throws {
        guard (8...15).contains(compressionWindowBits) else {
            throw ValidationError("--compression-window-bits must be 8 to 15, not \(compressionWindowBits)")
        }
        guard (1...9).contains(compressionMemoryLevel) else {
            throw ValidationError("--compression-memory-level must be 1 to 9, not \(compressionMemoryLevel)")
        }
        guard (1...9).contains(compressionLevel) else {
            throw ValidationError("--compression-level must be 1 to 9, not \(compressionLevel)")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        for proxy in trustedProxies {
            do { _ = try IPNetwork(proxy) } catch { throw ValidationError("--trusted-proxy: \(error)") }
        }
        guard maxConnections > 0, maxConnectionsPerAddress > 0 else {
            throw ValidationError("--max-connections and --max-connections-per-address must be positive")
        }
        guard pingInterval >= 0, pingTimeout > 0 else {
            throw ValidationError("--ping-interval must not be negative and --ping-timeout must be positive")
        }
        if let backplane {
            do { _ = try PostgresBackplane.Configuration(url: backplane) } catch { throw ValidationError("--backplane: \(error)") }
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard maxMessageRate >= 0, idleTimeout >= 0, maxBufferedBytes > 0 else {
            throw ValidationError("--max-message-rate and --idle-timeout must not be negative, --max-buffered-bytes must be positive")
        }
    }

    func run() async throws {
        var logger = Logger(label: "duplex")
        logger.logLevel = logLevel
        // Metrics first: instruments made before the bootstrap would report nowhere.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var channelBackplane: any Backplane = InProcessBackplane()
        if let backplane {
            channelBackplane = try PostgresBackplane(configuration: .init(url: backplane), logger: logger)
        }
        let app = ServeApp(chat: chat, channels: Channels(backplane: channelBackplane), registry: registry)
        var tls: ServerTLS?
        if let tlsCert, let tlsKey {
            do {
                tls = try ServerTLS(certificateChainPath: tlsCert, privateKeyPath: tlsKey)
            } catch {
                throw ValidationError("cannot use --tls-cert \(tlsCert) and --tls-key \(tlsKey): \(error)")
            }
        }
        let configuration = WebSocketServer.Configuration(
            host: host, port: port,
            connection: .init(maxFrameSize: maxMessageSize, maxMessageSize: maxMessageSize),
            subprotocols: subprotocols.isEmpty ? .none : .supported(subprotocols),
            origins: OriginPolicy(allowed: allowedOrigins),
            limits: limits,
            compression: compression,
            tls: tls,
            trustedProxies: try trustedProxies.map { try IPNetwork($0) },
            heartbeat: heartbeat,
            http: app.http)
        let loops: (any EventLoopGroup)? = threads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
        let server = WebSocketServer(configuration: configuration, eventLoopGroup: loops ?? MultiThreadedEventLoopGroup.singleton,
                                     logger: logger, handler: app.handler)
        app.attach(server)
        try await app.channels.start()
        let address = try await server.start()
        let shownHost = host.contains(":") ? "[\(host)]" : host
        say("duplex: \(chat ? "chat and echo" : "echo") server listening on \(tls == nil ? "ws" : "wss")://\(shownHost):\(address.port ?? port)/")
        if let tls { Task { await Self.reloadOnHangUp(tls, logger: logger) } }
        logger.info("permessage-deflate", metadata: ["compression": "\(compressionSummary)"])
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        await app.channels.shutdown()
        try await loops?.shutdownGracefully()
        say("duplex: stopped")
    }
}

extension Serve {
    /// Reloads the certificate and key on every SIGHUP; a failed reload keeps the current ones.
    static func reloadOnHangUp(_ tls: ServerTLS, logger: Logger) async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            do {
                try tls.reload()
                logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(tls.certificateChainPath)"])
            } catch {
                logger.error("TLS certificate reload failed; keeping the current one", metadata: ["error": "\(error)"])
            }
        }
    }

    var heartbeat: Heartbeat {
        Heartbeat(pingInterval: pingInterval > 0 ? .fromSeconds(pingInterval) : nil, pingTimeout: .fromSeconds(pingTimeout),
                  answering: jsonPings ? .json : nil)
    }

    var limits: ServerLimits {
        ServerLimits(
            maxConnections: maxConnections, maxConnectionsPerAddress: maxConnectionsPerAddress,
            messageRate: maxMessageRate > 0 ? RateLimit(perSecond: maxMessageRate) : nil,
            maxBufferedBytes: maxBufferedBytes,
            idleTimeout: idleTimeout > 0 ? .fromSeconds(idleTimeout) : nil)
    }

    var compressionSummary: String {
        guard let compression else { return "off" }
        let context = compression.serverNoContextTakeover ? "no context takeover, shared per-thread zlib streams" : "context takeover"
        return "on (window \(compression.serverMaxWindowBits) bits, level \(compression.compressionLevel), memory level \(compression.memoryLevel), \(context))"
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension TimeAmount {
    /// A duration given in seconds on the command line.
    static func fromSeconds(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64(seconds * 1e9)) }
}

/// Writes a line to standard output at once (unbuffered), so that a script reading through a pipe sees it.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
