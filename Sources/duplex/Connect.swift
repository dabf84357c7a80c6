import ArgumentParser
import Duplex
import Foundation
import NIOCore
import NIOSSL
import Synchronization

struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect to a WebSocket server: lines from standard input go out as text messages, messages received are printed.",
        discussion: """
            Each message received is written to standard output on a line of its own (binary ones as hex, or raw with \
            --binary raw); what happens to the connection goes to standard error. End of input, or Ctrl-D, closes with \
            1000. With --send, the messages are sent, --count replies awaited, and the connection closed: a one-shot \
            mode for scripts. The exit status is 0 after a clean close with 1000 or 1001, 1 otherwise.
            """
    )

    enum BinaryFormat: String, ExpressibleByArgument, CaseIterable {
        case hex, raw
    }

    @Argument(help: "The ws:// or wss:// URL.")
    var url: String

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, \"Name: value\" (repeatable).")
    var headers: [String] = []

    @Option(name: .customLong("subprotocol"), help: "A subprotocol to offer (repeatable, in order of preference).")
    var subprotocols: [String] = []

    @Option(help: "The Origin header to send, as a browser on that origin would.")
    var origin: String?

    @Option(help: "Send this text message once connected (repeatable); then wait for --count messages and close.")
    var send: [String] = []

    @Option(help: "With --send: how many messages to wait for before closing (default: as many as were sent).")
    var count: Int?

    @Option(help: "How binary messages are printed: hex (one line each) or raw (the bytes as they are).")
    var binary: BinaryFormat = .hex

    @Option(help: "Seconds between protocol pings; the connection fails when the server shows no life within --ping-timeout. 0: none.")
    var pingInterval = 0.0

    @Option(help: "Seconds the server has to answer a ping.")
    var pingTimeout = 10.0

    @Option(help: "A PEM file with the CA certificates to trust for wss:// instead of the system's.")
    var ca: String?

    @Flag(help: "Do not verify the server's certificate (development only: anyone can intercept the connection).")
    var insecure = false

    @Option(help: "An HTTP proxy to tunnel through with CONNECT (http://[user:password@]host:port); by default HTTPS_PROXY/HTTP_PROXY/NO_PROXY decide.")
    var proxy: String?

    @Flag(help: "Connect directly, whatever the environment says.")
    var noProxy = false

    @Flag(help: "Do not offer permessage-deflate.")
    var noCompression = false

    @Option(help: "Seconds to wait for the server's replies (with --send) and for the connection.")
    var timeout = 10.0

    func validate() throws {
        for header in headers where !header.contains(":") {
            throw ValidationError("-H takes \"Name: value\", not \(header)")
        }
        if let count, count < 0 { throw ValidationError("--count must not be negative") }
        if count != nil, send.isEmpty { throw ValidationError("--count goes with --send") }
        if let proxy, HTTPProxy.fromEnvironment(for: "ws://example.invalid/", environment: ["HTTP_PROXY": proxy]) == nil {
            throw ValidationError("--proxy takes http://[user:password@]host:port, not \(proxy)")
        }
        guard pingInterval >= 0, pingTimeout > 0, timeout > 0 else {
            throw ValidationError("--ping-interval must not be negative, --ping-timeout and --timeout must be positive")
        }
    }

    var clientConfiguration: WebSocketClient.Configuration {
        var fields = HTTPFields()
        for header in headers {
            let parts = header.split(separator: ":", maxSplits: 1)
            fields.add(String(parts[0]).trimmingCharacters(in: .whitespaces), String(parts.count > 1 ? parts[1] : "").trimmingCharacters(in: .whitespaces))
        }
        if let origin { fields.replaceOrAdd("Origin", origin) }
        var tls = WebSocketClient.defaultTLS
        if let ca { tls.trustRoots = .file(ca) }
        if insecure { tls.certificateVerification = .none }
        return WebSocketClient.Configuration(
            headers: fields, subprotocols: subprotocols,
            connectTimeout: .fromSeconds(timeout), handshakeTimeout: .fromSeconds(timeout),
            compression: noCompression ? nil : .init(), tls: tls,
            heartbeat: Heartbeat(pingInterval: pingInterval > 0 ? .fromSeconds(pingInterval) : nil, pingTimeout: .fromSeconds(pingTimeout)),
            proxy: proxySetting)
    }

    var proxySetting: WebSocketClient.Configuration.ProxySetting {
        if noProxy { return .direct }
        guard let proxy, let parsed = HTTPProxy.fromEnvironment(for: "ws://example.invalid/", environment: ["HTTP_PROXY": proxy]) else {
            return .environment
        }
        return .proxy(parsed)
    }

    func run() async throws {
        let ws: WebSocketClientConnection
        do {
            ws = try await WebSocketClient.connect(to: url, configuration: clientConfiguration)
        } catch {
            report("duplex: cannot connect to \(url): \(error)")
            throw ExitCode(2)
        }
        let agreed = [ws.context.subprotocol.map { "subprotocol \($0)" }, ws.context.extensions.isEmpty ? nil : WebSocketExtension.format(ws.context.extensions)]
            .compactMap { $0 }
        report("duplex: connected to \(url)" + (agreed.isEmpty ? "" : " (\(agreed.joined(separator: "; ")))"))

        let printer = Task { [binary] in
            var received = 0
            for await message in ws.inbound {
                Self.print(message, binary: binary)
                received += 1
            }
            return received
        }
        if send.isEmpty {
            for await line in Self.standardInputLines() {
                do {
                    try await ws.outbound.write(.text(line))
                } catch {
                    break  // closed by the server; its close is reported below
                }
            }
            _ = try? await ws.outbound.close()
        } else {
            try await oneShot(ws)
        }
        _ = await printer.value
        let info = await ws.outbound.closeInfo()
        report("duplex: closed: \(info)")
        guard info.wasClean, info.code == .normalClosure || info.code == .goingAway else { throw ExitCode(1) }
    }

    /// Sends the --send messages, waits for --count of them to come back (at most --timeout), closes.
    private func oneShot(_ ws: WebSocketClientConnection) async throws {
        for message in send { try await ws.outbound.write(.text(message)) }
        let expected = count ?? send.count
        let deadline = ContinuousClock.now + .seconds(timeout)
        while Self.printedMessages.withLock({ $0 }) < expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        if Self.printedMessages.withLock({ $0 }) < expected {
            report("duplex: \(Self.printedMessages.withLock { $0 }) of \(expected) messages within \(timeout) s")
        }
        _ = try? await ws.outbound.close()
    }

    /// Messages printed so far, for the one-shot wait.
    private static let printedMessages = Mutex(0)

    private static func print(_ message: WebSocketMessage, binary: BinaryFormat) {
        var out = Data()
        switch (message.kind, binary) {
        case (.text, _):
            out.append(contentsOf: message.data.readableBytesView)
            out.append(0x0A)
        case (.binary, .hex):
            out.append(contentsOf: message.data.readableBytesView.map { String(format: "%02x", $0) }.joined().utf8)
            out.append(0x0A)
        case (.binary, .raw):
            out.append(contentsOf: message.data.readableBytesView)
        }
        FileHandle.standardOutput.write(out)
        printedMessages.withLock { $0 += 1 }
    }

    /// Lines of standard input, read on a thread of their own; ends at end of input.
    private static func standardInputLines() -> AsyncStream<String> {
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        let reader = Thread {
            while let line = readLine(strippingNewline: true) { continuation.yield(line) }
            continuation.finish()
        }
        reader.start()
        return lines
    }

    private func report(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
