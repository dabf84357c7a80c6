import DuplexTestSupport
import Duplex
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// `duplex connect` as a user runs it: the built executable with pipes for its standard streams.
@Suite(.timeLimit(.minutes(1))) struct ConnectCommandTests {
    struct Run {
        let status: Int32
        let outputBytes: [UInt8]
        let errors: String
        var output: String { String(decoding: outputBytes, as: UTF8.self) }
    }

    /// Runs `duplex connect` with `arguments`, writing `input` to its standard input then closing it.
    static func connect(_ arguments: [String], input: String = "") async throws -> Run {
        let process = Process()
        process.executableURL = ServeProcess.executable
        process.arguments = ["connect"] + arguments
        let (stdin, stdout, stderr) = (Pipe(), Pipe(), Pipe())
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        return await runBlocking {
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            let errors = stderr.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Run(status: process.terminationStatus, outputBytes: Array(output), errors: String(decoding: errors, as: UTF8.self))
        }
    }

    /// An in-process server that greets with a binary message and the `X-Token` it was sent, then echoes.
    func greetingServer(_ configuration: WebSocketServer.Configuration = .init()) async throws -> (WebSocketServer, Int) {
        var configuration = configuration
        configuration.port = 0
        let server = WebSocketServer(configuration: configuration, handler: .callbacks { ws in
            try? ws.send(binary: ByteBuffer(bytes: [0xDE, 0xAD, 0x01]))
            try? ws.send(text: "token \(ws.request.headers["X-Token"] ?? "none")")
            ws.onMessage = { ws, message in try? ws.send(message) }
        })
        return (server, try await server.start().port!)
    }

    @Test func oneShotAgainstDuplexServe() async throws {
        let (serve, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--log-level", "error"])
        defer { serve.terminate(); serve.waitUntilExit() }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let run = try await Self.connect([url, "--send", "hello", "--send", "wörld ✓"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output == "hello\nwörld ✓\n")
        #expect(run.errors.contains("duplex: connected to \(url) (permessage-deflate"))
        #expect(run.errors.contains("duplex: closed: 1000 (normal closure), clean"))
    }

    @Test func linesFromAPipeGoOutAndEndOfInputCloses() async throws {
        let (serve, firstLine) = try await ServeProcess.launch(["serve", "--port", "0", "--log-level", "error"])
        defer { serve.terminate(); serve.waitUntilExit() }
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let run = try await Self.connect([url], input: "first line\nsecond line\n\nfourth\n")
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output == "first line\nsecond line\n\nfourth\n")
    }

    @Test func headersBinaryAsHexAndRaw() async throws {
        let (server, port) = try await greetingServer()
        let hex = try await Self.connect(["ws://127.0.0.1:\(port)/", "-H", "X-Token: s3cret", "--send", "x", "--count", "3"])
        #expect(hex.status == 0, "\(hex.errors)")
        #expect(hex.output == "dead01\ntoken s3cret\nx\n")
        let raw = try await Self.connect(["ws://127.0.0.1:\(port)/", "--binary", "raw", "--send", "x", "--count", "3"])
        #expect(raw.outputBytes == [0xDE, 0xAD, 0x01] + Array("token none\nx\n".utf8), "raw bytes, then the text lines")
        await server.shutdown()
    }

    @Test func refusalsAndAbnormalClosesExitNonZero() async throws {
        let (server, port) = try await greetingServer(.init(connection: .init(maxFrameSize: 16, maxMessageSize: 16)))
        // A cross-origin browser is refused with 403: no connection, exit 2.
        let refused = try await Self.connect(["ws://127.0.0.1:\(port)/", "--origin", "https://evil.example", "--send", "x"])
        #expect(refused.status == 2)
        #expect(refused.errors.contains("403"), "\(refused.errors)")
        // A message over the server's limit: close 1009, exit 1.
        let tooBig = try await Self.connect(["ws://127.0.0.1:\(port)/", "--no-compression", "--send", String(repeating: "x", count: 100)])
        #expect(tooBig.status == 1)
        #expect(tooBig.errors.contains("1009"), "\(tooBig.errors)")
        await server.shutdown()
        // Bad arguments are refused before connecting.
        let bad = try await Self.connect(["ws://127.0.0.1:\(port)/", "-H", "no colon"])
        #expect(bad.status != 0)
        #expect(bad.errors.contains("-H takes \"Name: value\""))
    }
}

/// `duplex bench` as a user runs it, briefly: progress on standard error, the result as JSON.
@Suite(.timeLimit(.minutes(1))) struct BenchCommandTests {
    static func bench(_ arguments: [String]) async throws -> (status: Int32, result: [String: Any], progress: String) {
        let (status, json, progress) = try await benchJSON(arguments)
        return (status, json as? [String: Any] ?? [:], progress)
    }

    /// Runs `duplex bench` with `arguments` and `--json`; returns its status, parsed output and progress.
    static func benchJSON(_ arguments: [String]) async throws -> (status: Int32, json: Any, progress: String) {
        let (status, output, progress) = try await benchOutput(arguments)
        return (status, try JSONSerialization.jsonObject(with: output), progress)
    }

    /// Runs `duplex bench` with `arguments` and `--json`; returns its status, standard output and error.
    static func benchOutput(_ arguments: [String]) async throws -> (status: Int32, output: Data, progress: String) {
        let process = Process()
        process.executableURL = ServeProcess.executable
        process.arguments = ["bench"] + arguments + ["--json"]
        let (stdout, stderr) = (Pipe(), Pipe())
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let (status, output, progress) = await runBlocking {
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            let progress = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, output, progress)
        }
        return (status, output, progress)
    }

    @Test func echoAndConnectModes() async throws {
        let server = WebSocketServer(configuration: .init(port: 0, limits: ServerLimits(messageRate: nil)), handler: .callbacks { ws in
            ws.onMessage = { ws, message in try? ws.send(message) }
        })
        let port = try await server.start().port!
        let echo = try await Self.bench(["ws://127.0.0.1:\(port)/", "-c", "4", "-p", "4", "-s", "64", "-d", "2"])
        #expect(echo.status == 0)
        #expect(echo.result["mode"] as? String == "echo")
        let messages = try #require(echo.result["messages"] as? Int)
        #expect(messages > 100)
        let p50 = try #require(echo.result["p50_us"] as? Double)
        let p99 = try #require(echo.result["p99_us"] as? Double)
        #expect(p50 > 0 && p50 <= p99)
        #expect(echo.progress.contains("bench: 1 s"))

        let connect = try await Self.bench(["ws://127.0.0.1:\(port)/", "--mode", "connect", "-c", "2", "-d", "1"])
        #expect(connect.status == 0)
        #expect((connect.result["handshakes"] as? Int ?? 0) > 10)
        #expect(connect.result["failed"] as? Int == 0)
        await server.shutdown()
    }

    /// `--driver frames` against a server that fragments its echoes and pings every 100 ms: the
    /// echoes are counted whole (no more than the server received), the pings are answered (the
    /// heartbeat does not drop the connections), and connect mode ends each handshake with a close
    /// handshake.
    @Test func framesDriverEchoesAndConnects() async throws {
        let received = NIOLockedValueBox(0)
        let pongs = NIOLockedValueBox(0)
        let configuration = WebSocketServer.Configuration(
            port: 0, connection: .init(outboundFragmentSize: 1_000), limits: ServerLimits(messageRate: nil),
            heartbeat: Heartbeat(pingInterval: .milliseconds(100), pingTimeout: .milliseconds(400)))
        let server = WebSocketServer(configuration: configuration, handler: .callbacks { ws in
            ws.onMessage = { ws, message in
                #expect(message.data.readableBytes == 5_000)
                received.withLockedValue { $0 += 1 }
                try? ws.send(message)
            }
            ws.onPong = { _, _ in pongs.withLockedValue { $0 += 1 } }
        })
        let port = try await server.start().port!
        let echo = try await Self.bench(["ws://127.0.0.1:\(port)/", "--driver", "frames", "--binary", "-c", "3", "-p", "2", "-s", "5000", "-d", "2"])
        #expect(echo.status == 0, "\(echo.progress)")
        let messages = try #require(echo.result["messages"] as? Int)
        #expect(messages > 50)
        #expect(messages <= received.withLockedValue { $0 })
        let p50 = try #require(echo.result["p50_us"] as? Double)
        #expect(p50 > 0)
        #expect(pongs.withLockedValue { $0 } >= 3 * 10)  // 3 connections, a ping each 100 ms for 2 s

        let connect = try await Self.bench(["ws://127.0.0.1:\(port)/", "--mode", "connect", "--driver", "frames", "-c", "2", "-d", "1"])
        #expect(connect.status == 0)
        #expect((connect.result["handshakes"] as? Int ?? 0) > 10)
        #expect(connect.result["failed"] as? Int == 0)
        await server.shutdown()
    }

    /// An echo of the wrong size fails the run with a message that says so; the frames driver
    /// refuses wss:// and compression, which it does not speak.
    @Test func framesDriverFailsOnAWrongEchoAndRefusesWhatItCannotDo() async throws {
        let server = WebSocketServer(configuration: .init(port: 0, limits: ServerLimits(messageRate: nil)), handler: .callbacks { ws in
            ws.onMessage = { ws, _ in try? ws.send(.binary(ByteBuffer(bytes: [1, 2, 3]))) }
        })
        let port = try await server.start().port!
        let run = try await Self.benchOutput(["ws://127.0.0.1:\(port)/", "--driver", "frames", "--binary", "-c", "1", "-s", "100", "-d", "1"])
        #expect(run.status != 0)
        #expect(run.progress.contains("an echo of 3 bytes for a message of 100"), "\(run.progress)")
        await server.shutdown()
        let secure = try await Self.benchOutput(["wss://127.0.0.1:\(port)/", "--driver", "frames", "-d", "1"])
        #expect(secure.status != 0 && secure.progress.contains("--driver frames speaks ws:// only"))
        let compressed = try await Self.benchOutput(["ws://127.0.0.1:\(port)/", "--driver", "frames", "--compression", "-d", "1"])
        #expect(compressed.status != 0 && compressed.progress.contains("--driver frames does not compress"))
    }

    /// A server that accepts connections and never answers: the frames driver gives up on the
    /// handshake after 5 s and says so, rather than waiting for ever.
    @Test func framesDriverTimesOutASilentServer() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(silent.localAddress?.port)
        let run = try await Self.benchOutput(["ws://127.0.0.1:\(port)/", "--driver", "frames", "-c", "1", "-d", "1"])
        #expect(run.status != 0)
        #expect(run.progress.contains("no handshake response within 5 s"), "\(run.progress)")
        try await silent.close()
    }

    /// Accepts one WebSocket handshake by hand, then sends `frame`: a server that breaks the protocol.
    final class RogueServer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let frame: [UInt8]
        init(frame: [UInt8]) { self.frame = frame }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            var parser = HTTPHeadParser()
            guard let head = try? parser.parseRequest(&bytes), let key = head.headers["Sec-WebSocket-Key"] else { return }
            var response = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: \(WebSocketAccept.value(forKey: key))\r\n\r\n")
            response.writeBytes(frame)
            context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        }
    }

    /// A server that sends a ping of 200 bytes (control frames carry at most 125): the frames driver
    /// fails the run and names the fault.
    @Test func framesDriverRefusesAnOversizedControlFrame() async throws {
        let ping: [UInt8] = [0x89, 126, 0, 200] + [UInt8](repeating: 0x61, count: 200)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RogueServer(frame: ping)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let run = try await Self.benchOutput(["ws://127.0.0.1:\(port)/", "--driver", "frames", "-c", "1", "-d", "1"])
        #expect(run.status != 0)
        #expect(run.progress.contains("a control frame of 200 bytes (at most 125)"), "\(run.progress)")
        try await server.close()
    }

    /// Connect mode against a port where nothing listens: every attempt fails, is counted, and the
    /// run still ends on time (failures are retried from the event loop, not by recursion).
    @Test func connectModeCountsRefusedConnections() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        try await listener.close()  // the port is free now: connections to it are refused
        let run = try await Self.bench(["ws://127.0.0.1:\(port)/", "--mode", "connect", "-c", "2", "-d", "1"])
        #expect(run.status == 0)
        #expect(run.result["handshakes"] as? Int == 0)
        #expect((run.result["failed"] as? Int ?? 0) > 0)
    }

    /// The same stream over WebSocket, long polling and short polling: all of it arrives each way, and
    /// polling costs what it must — requests, bytes and latency.
    @Test func pollingComparison() async throws {
        let run = try await Self.benchJSON(["polling", "-c", "5", "--rate", "20", "-d", "1", "--interval", "0.2"])
        #expect(run.status == 0)
        let rows = try #require(run.json as? [[String: Any]])
        let byTransport = Dictionary(uniqueKeysWithValues: rows.map { ($0["transport"] as? String ?? "?", $0) })
        #expect(byTransport.keys.sorted() == ["long-polling", "short-polling 200 ms", "websocket"])
        for row in rows {
            #expect(row["events"] as? Int == 20)
            #expect(row["delivered"] as? Int == 100, "\(row)")
        }
        func value(_ transport: String, _ key: String) -> Double { byTransport[transport]?[key] as? Double ?? .nan }
        // One handshake per client; a long poll per answer (an answer may carry several events when
        // the machine is busy); a short poll every 200 ms for 1 s or more (at least 5 per client).
        #expect(value("websocket", "requests_per_event") == 0.05)
        #expect(value("long-polling", "requests_per_event") > 0.05)
        #expect(value("short-polling 200 ms", "requests_per_event") >= 0.25)
        #expect(value("websocket", "bytes_per_event") < value("long-polling", "bytes_per_event"))
        #expect(value("websocket", "bytes_per_event") < value("short-polling 200 ms", "bytes_per_event"))
        // A short poller waits for its next turn: half the interval on average.
        #expect(value("short-polling 200 ms", "p50_ms") > 20)
    }
}
