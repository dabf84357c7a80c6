public import ArgumentParser
import Duplex
import Foundation
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a WebSocket echo server.",
        discussion: "Echoes every text and binary message on any path. SIGINT or SIGTERM drains the server: close 1001 to every client, then exit."
    )

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Option(name: .customLong("subprotocol"), help: "A subprotocol the server supports (repeatable); it selects the first one in the client's offer that it supports.")
    var subprotocols: [String] = []

    @Option(help: "The largest message accepted, in bytes (close 1009 beyond).")
    var maxMessageSize = 16 << 20

    @Option(help: "The log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        var logger = Logger(label: "duplex")
        logger.logLevel = logLevel
        let configuration = WebSocketServer.Configuration(
            host: host, port: port,
            connection: .init(maxFrameSize: maxMessageSize, maxMessageSize: maxMessageSize),
            subprotocols: subprotocols.isEmpty ? .none : .supported(subprotocols))
        let server = WebSocketServer(configuration: configuration, logger: logger, handler: .callbacks { ws in
            ws.onMessage = { ws, message in try? ws.send(message) }
        })
        let address = try await server.start()
        let shownHost = host.contains(":") ? "[\(host)]" : host
        say("duplex: echo server listening on ws://\(shownHost):\(address.port ?? port)/")
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        say("duplex: stopped")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Writes a line to standard output at once (unbuffered), so that a script reading through a pipe sees it.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
