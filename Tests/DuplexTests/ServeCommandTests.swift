import DuplexTestSupport
import Duplex
import Foundation
import NIOCore
import Testing

/// `duplex serve` as a user runs it: the built executable, its printed URL, echo, and SIGTERM.
@Suite(.timeLimit(.minutes(1))) struct ServeCommandTests {
    @Test func servesEchoPrintsItsURLAndDrainsOnSIGTERM() async throws {
        let (process, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--subprotocol", "chat", "--log-level", "warning"])
        defer { if process.isRunning { process.terminate() } }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(firstLine.hasPrefix("duplex: echo server listening on ws://127.0.0.1:"))

        let ws = try await WebSocketClient.connect(to: url, configuration: .init(subprotocols: ["other", "chat"]))
        #expect(ws.context.subprotocol == "chat")
        var iterator = ws.inbound.makeAsyncIterator()
        try await ws.outbound.write(.text("ping?"))
        #expect(await iterator.next() == .text("ping?"))
        try await ws.outbound.write(.binary([1, 2, 3]))
        #expect(await iterator.next() == .binary([1, 2, 3]))

        var others: [WebSocketClientConnection] = []
        for _ in 0..<5 { others.append(try await WebSocketClient.connect(to: url)) }

        let start = ContinuousClock.now
        process.terminate()  // SIGTERM
        for client in [ws] + others {
            let info = await client.outbound.closeInfo()
            #expect(info.code == .goingAway)
            #expect(info.reason == "server shutting down")
            #expect(info.wasClean)
        }
        let status = await runBlocking { process.waitUntilExit(); return process.terminationStatus }
        #expect(status == 0)
        #expect(ContinuousClock.now - start < .seconds(5), "drained within the 5-second grace period")
    }

    @Test(arguments: [
        ([], "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        (["--compression-context-takeover", "--compression-window-bits", "10"], "permessage-deflate; server_max_window_bits=10"),
        (["--no-compression"], ""),
    ])
    func negotiatesCompressionByDefault(options: [String], agreed: String) async throws {
        let (process, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--log-level", "warning"] + options)
        defer { process.terminate(); process.waitUntilExit() }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let ws = try await WebSocketClient.connect(to: url, configuration: .init(compression: .init()))
        #expect(WebSocketExtension.format(ws.context.extensions) == agreed)
        let text = String(repeating: "compressible ", count: 1_000)
        try await ws.outbound.write(.text(text))
        var iterator = ws.inbound.makeAsyncIterator()
        #expect(await iterator.next() == .text(text))
        _ = try await ws.outbound.close()
    }

    /// Browsers' JSON pings are answered by default; `--ping-interval` pings clients, and one that
    /// never answers is closed with 1011.
    @Test func answersJSONPingsAndPingsItsClients() async throws {
        let (process, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--log-level", "error",
                                                         "--ping-interval", "0.2", "--ping-timeout", "0.3"])
        defer { process.terminate(); process.waitUntilExit() }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let ws = try await WebSocketClient.connect(to: url)
        var iterator = ws.inbound.makeAsyncIterator()
        try await ws.outbound.write(.text(#"{"type":"ping","value":1584622155785}"#))
        #expect(await iterator.next() == .text(#"{"pong":"1584622155785"}"#))
        try await Task.sleep(for: .seconds(1))  // several pings, answered by the client's stack
        try await ws.outbound.write(.text("still open"))
        #expect(await iterator.next() == .text("still open"))
        _ = try await ws.outbound.close()

        let port = try #require(URL(string: url)?.port)
        let mute = try await RawTCPClient.connect(port: port)
        try await mute.send(upgradeRequest())  // then never answers a ping
        let bytes = try await mute.receivedUntilClosed(timeout: .seconds(5))
        let close = try #require(try framesAfterHead(bytes).frames.last { $0.header.opcode == .close })
        #expect(close.payload.getInteger(at: close.payload.readerIndex, as: UInt16.self) == 1011)
    }

    /// `--chat`: rooms at /chat/{room} reach every member, the sender included, and no one else; echo
    /// elsewhere; the demo page, health and stats over plain HTTP on the same port.
    @Test func chatRoomsAndPlainHTTP() async throws {
        let (process, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--chat", "--log-level", "error"])
        defer { process.terminate(); process.waitUntilExit() }
        #expect(firstLine.hasPrefix("duplex: chat and echo server listening on ws://127.0.0.1:"))
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let port = try #require(URL(string: url)?.port)
        let alice = try await WebSocketClient.connect(to: url + "chat/kitchen")
        let bob = try await WebSocketClient.connect(to: url + "chat/kitchen", configuration: .init(compression: .init()))
        let carol = try await WebSocketClient.connect(to: url + "chat/garden")
        let echo = try await WebSocketClient.connect(to: url + "anything")
        try await Task.sleep(for: .milliseconds(100))  // the joins happen as the connections open
        var aliceIn = alice.inbound.makeAsyncIterator()
        var bobIn = bob.inbound.makeAsyncIterator()
        var carolIn = carol.inbound.makeAsyncIterator()
        var echoIn = echo.inbound.makeAsyncIterator()
        // One publisher at a time: the order of two publishers' messages is not defined.
        try await alice.outbound.write(.text("tea?"))
        #expect(await aliceIn.next() == .text("tea?"))
        #expect(await bobIn.next() == .text("tea?"))
        try await bob.outbound.write(.binary([1, 2]))
        #expect(await aliceIn.next() == .binary([1, 2]))
        #expect(await bobIn.next() == .binary([1, 2]))
        try await carol.outbound.write(.text("roses"))
        try await echo.outbound.write(.text("echo"))
        #expect(await carolIn.next() == .text("roses"), "garden hears only garden")
        #expect(await echoIn.next() == .text("echo"))

        func get(_ path: String) async throws -> String {
            let raw = try await RawTCPClient.connect(port: port)
            try await raw.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return String(buffer: try await raw.receivedUntilClosed())
        }
        let page = try await get("/")
        #expect(page.statusLine == "HTTP/1.1 200 OK")
        #expect(page.contains("Content-Type: text/html; charset=utf-8") && page.contains("<title>Duplex demo</title>"))
        #expect(try await get("/healthz").hasSuffix("\r\n\r\nok\n"))
        #expect(try await get("/readyz").hasSuffix("\r\n\r\nready\n"))
        let stats = try await get("/stats")
        #expect(stats.contains(#""connections":"#) && stats.contains(#""chat":true,"rooms":{"garden":1,"kitchen":2}"#), "\(stats)")
        #expect(try await get("/missing").statusLine == "HTTP/1.1 404 Not Found")
        for ws in [alice, bob, carol, echo] { _ = try await ws.outbound.close() }
    }

    /// `/metrics` after a known exchange: three messages each way, one cross-origin refusal, one
    /// clean close, nothing left open.
    @Test func metricsCountAKnownExchange() async throws {
        let (process, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--log-level", "error"])
        defer { process.terminate(); process.waitUntilExit() }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let port = try #require(URL(string: url)?.port)
        let ws = try await WebSocketClient.connect(to: url)
        var iterator = ws.inbound.makeAsyncIterator()
        for message in [WebSocketMessage.text("one"), .binary(ByteBuffer(repeating: 1, count: 100)), .text("three")] {
            try await ws.outbound.write(message)
            #expect(await iterator.next() == message)
        }
        _ = try await ws.outbound.close()
        let refused = try await RawTCPClient.connect(port: port)
        try await refused.send(upgradeRequest(extraHeaders: "Origin: https://evil.example\r\n"))
        #expect(String(buffer: try await refused.receivedUntilClosed()).statusLine == "HTTP/1.1 403 Forbidden")

        let scrape = try await RawTCPClient.connect(port: port)
        try await scrape.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let metrics = String(buffer: try await scrape.receivedUntilClosed())
        #expect(metrics.contains("Content-Type: text/plain; version=0.0.4"))
        let lines = Set(metrics.split(separator: "\n").map(String.init))
        for expected in [
            #"duplex_handshakes_total{result="accepted"} 1"#,
            #"duplex_handshakes_total{result="refused",reason="origin"} 1"#,
            #"duplex_messages_total{direction="in"} 3"#,
            #"duplex_messages_total{direction="out"} 3"#,
            #"duplex_message_bytes_total{direction="in"} 108"#,
            #"duplex_message_bytes_total{direction="out"} 108"#,
            #"duplex_closes_total{code="1000"} 1"#,
            "duplex_connections_open 0.0",
            "duplex_heartbeat_timeouts_total 0",
            "duplex_slow_consumers_total 0",
        ] {
            #expect(lines.contains(expected), "missing \(expected) in\n\(metrics)")
        }
    }

    /// Command line over environment over configuration file over defaults, checked by behaviour:
    /// the message size limit that applies, chat from the file, the JSON pings switched off.
    @Test func configurationPrecedence() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("duplex-\(UUID().uuidString).json")
        try #"{"max-message-size": 100, "chat": true, "json-pings": true, "log-level": "error", "port": 0}"#
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        /// Whether a text message of `size` bytes comes back from a server started with these sources.
        func accepts(_ size: Int, arguments: [String], environment: [String: String]) async throws -> (Bool, String) {
            let (process, firstLine) = try await ServeProcess.launch(["serve"] + arguments, environment: environment)
            defer { process.terminate(); process.waitUntilExit() }
            let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
            let ws = try await WebSocketClient.connect(to: url)
            let text = String(repeating: "x", count: size)
            try await ws.outbound.write(.text(text))
            var iterator = ws.inbound.makeAsyncIterator()
            let echoed = await iterator.next() == .text(text)
            return (echoed, firstLine)
        }
        // File alone: 100.
        let (fileOnly, firstLine) = try await accepts(150, arguments: ["--config", file.path], environment: [:])
        #expect(!fileOnly)
        #expect(firstLine.hasPrefix("duplex: chat and echo server"), "chat comes from the file")
        // The environment over the file: 200 (and the file named by the environment too).
        #expect(try await accepts(150, arguments: [], environment: ["DUPLEX_SERVE_CONFIG": file.path, "DUPLEX_SERVE_MAX_MESSAGE_SIZE": "200"]).0)
        #expect(try await !accepts(250, arguments: ["--config", file.path], environment: ["DUPLEX_SERVE_MAX_MESSAGE_SIZE": "200"]).0)
        // The command line over both: 300.
        #expect(try await accepts(250, arguments: ["--config", file.path, "--max-message-size", "300"],
                                  environment: ["DUPLEX_SERVE_MAX_MESSAGE_SIZE": "200"]).0)
        // A flag the file turns on, the environment turns off: JSON pings are echoed, not answered.
        let (process, line) = try await ServeProcess.launch(["serve", "--config", file.path], environment: ["DUPLEX_SERVE_JSON_PINGS": "false"])
        defer { process.terminate(); process.waitUntilExit() }
        let url = try #require(line.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let ws = try await WebSocketClient.connect(to: url)
        try await ws.outbound.write(.text(#"{"type":"ping","value":1}"#))
        var iterator = ws.inbound.makeAsyncIterator()
        #expect(await iterator.next() == .text(#"{"type":"ping","value":1}"#))

        // A broken file is a clear error.
        try "{ not json".write(to: file, atomically: true, encoding: .utf8)
        let (broken, _) = try await ServeProcess.launch(["serve", "--config", file.path])
        let status = await runBlocking { broken.waitUntilExit(); return broken.terminationStatus }
        #expect(status != 0)
    }

    /// `--threads 1` serves on a loop group of its own and shuts it down on SIGTERM; `--threads 0`
    /// is refused.
    @Test func servesOnTheThreadsItIsGiven() async throws {
        let (process, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--threads", "1", "--log-level", "warning"])
        defer { if process.isRunning { process.terminate() } }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        var clients: [WebSocketClientConnection] = []
        for index in 0..<3 {
            let ws = try await WebSocketClient.connect(to: url)
            try await ws.outbound.write(.text("client \(index)"))
            var iterator = ws.inbound.makeAsyncIterator()
            #expect(await iterator.next() == .text("client \(index)"))
            clients.append(ws)
        }
        process.terminate()
        for client in clients { #expect(await client.outbound.closeInfo().code == .goingAway) }
        let status = await runBlocking { process.waitUntilExit(); return process.terminationStatus }
        #expect(status == 0)

        let (refused, _) = try await ServeProcess.launch(["serve", "--port", "0", "--threads", "0"])
        let refusedStatus = await runBlocking { refused.waitUntilExit(); return refused.terminationStatus }
        #expect(refusedStatus != 0)
    }

    @Test func rejectsAnOutOfRangeWindow() async throws {
        let (process, _) = try await ServeProcess.launch(["serve", "--port", "0", "--compression-window-bits", "16"])
        let status = await runBlocking { process.waitUntilExit(); return process.terminationStatus }
        #expect(status != 0)
    }
}
