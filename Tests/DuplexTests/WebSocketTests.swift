import Dispatch
import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The browser-style `WebSocket` over real sockets: event order, readyState, the browser's errors,
/// bufferedAmount under a slow reader, binaryType and the delivery queue.
@Suite(.timeLimit(.minutes(1))) struct WebSocketTests {
    /// Records events as text, in the order delivered.
    final class Recorder: Sendable {
        let events = NIOLockedValueBox<[String]>([])

        func record(_ event: WebSocket.Event) {
            let text: String =
                switch event {
                case .open: "open"
                case .message(.text(let text)): "text \(text)"
                case .message(.byteBuffer(let buffer)): "buffer \(Array(buffer.readableBytesView))"
                case .message(.bytes(let bytes)): "bytes \(bytes)"
                case .error: "error"
                case .close(let code, let reason, let wasClean): "close \(code) \(reason) \(wasClean)"
                }
            events.withLockedValue { $0.append(text) }
        }

        func wait(for count: Int, timeout: Duration = .seconds(10)) async throws -> [String] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let events = events.withLockedValue { $0 }
                if events.count >= count { return events }
                try await Task.sleep(for: .milliseconds(5))
            }
            throw TestFailure("only \(events.withLockedValue { $0 }) after \(timeout)")
        }
    }

    func echoServer(pauseFor pause: TimeAmount? = nil) async throws -> (WebSocketServer, Int) {
        let server = WebSocketServer(configuration: .init(port: 0, subprotocols: .supported(["chat"])), handler: .callbacks { ws in
            if let pause {
                ws.pauseReading()
                ws.eventLoop.assumeIsolated().scheduleTask(in: pause) { ws.resumeReading() }
            }
            ws.onMessage = { ws, message in try? ws.send(message) }
        })
        return (server, try await server.start().port!)
    }

    @Test func eventsComeInTheBrowsersOrder() async throws {
        let (server, port) = try await echoServer()
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/", protocols: ["chat", "other"])
        #expect(ws.readyState == .connecting)
        #expect(throws: WebSocket.DOMError.invalidState) { try ws.send("too early") }
        let states = NIOLockedValueBox<[WebSocket.ReadyState]>([])
        ws.onopen = { event in
            recorder.record(event)
            states.withLockedValue { $0.append(ws.readyState) }
            try? ws.send("hello")
            try? ws.send([1, 2, 3] as [UInt8])
        }
        ws.onmessage = { event in
            recorder.record(event)
            if case .message(.byteBuffer) = event {
                try? ws.close(code: 1000, reason: "bye")
                states.withLockedValue { $0.append(ws.readyState) }
            }
        }
        ws.onerror = { recorder.record($0) }
        ws.onclose = { event in
            recorder.record(event)
            states.withLockedValue { $0.append(ws.readyState) }
        }
        let extra = NIOLockedValueBox(0)
        ws.addEventListener(.message) { _ in extra.withLockedValue { $0 += 1 } }
        let removed = ws.addEventListener(.message) { _ in extra.withLockedValue { $0 += 100 } }
        ws.removeEventListener(removed)

        let events = try await recorder.wait(for: 4)
        // The close event carries the server's close frame: Duplex echoes the code, not the reason.
        #expect(events == ["open", "text hello", "buffer [1, 2, 3]", "close 1000  true"])
        #expect(states.withLockedValue { $0 } == [.open, .closing, .closed])
        #expect(ws.protocol == "chat")
        #expect(ws.extensions == "")
        #expect(extra.withLockedValue { $0 } == 2)
        // After close, send drops the message without throwing and counts it, as a browser does.
        try ws.send("late")
        #expect(ws.bufferedAmount == 4)
        await server.shutdown()
    }

    /// Messages sent before close() go out before the close frame, however large.
    @Test func closeComesAfterWhatWasSentBefore() async throws {
        let received = NIOLockedValueBox<[Int]>([])
        let closed = NIOLockedValueBox<CloseInfo?>(nil)
        let server = WebSocketServer(configuration: .init(port: 0), handler: .callbacks { ws in
            ws.onMessage = { _, message in received.withLockedValue { $0.append(message.data.readableBytes) } }
            ws.onClose = { _, info in closed.withLockedValue { $0 = info } }
        })
        let port = try await server.start().port!
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/")
        ws.onopen = { _ in
            for size in [1 << 20, 2 << 20, 3] { try? ws.send([UInt8](repeating: 1, count: size)) }
            try? ws.close(code: 4001, reason: "done")
        }
        ws.onclose = { recorder.record($0) }
        #expect(try await recorder.wait(for: 1) == ["close 4001  true"])
        #expect(received.withLockedValue { $0 } == [1 << 20, 2 << 20, 3])
        #expect(closed.withLockedValue { $0?.code.rawValue } == 4001)
        await server.shutdown()
    }

    @Test func aFailedConnectionGivesErrorThenClose() async throws {
        // A port with nothing listening.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = listener.localAddress!.port!
        try await listener.close()
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/")
        ws.onopen = { recorder.record($0) }
        ws.onerror = { recorder.record($0) }
        ws.onclose = { recorder.record($0) }
        #expect(try await recorder.wait(for: 2) == ["error", "close 1006  false"])
        #expect(ws.readyState == .closed)
    }

    @Test func theBrowsersArgumentChecks() async throws {
        #expect(throws: WebSocket.DOMError.syntax("invalid WebSocket URL http://example.com/")) { try WebSocket("http://example.com/") }
        #expect(throws: WebSocket.DOMError.syntax("duplicated subprotocol")) { try WebSocket("ws://127.0.0.1:1/", protocols: ["a", "a"]) }
        #expect(throws: WebSocket.DOMError.syntax("invalid subprotocol")) { try WebSocket("ws://127.0.0.1:1/", protocols: ["a b"]) }
        let (server, port) = try await echoServer()
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/")
        ws.onopen = { recorder.record($0) }
        ws.onclose = { recorder.record($0) }
        _ = try await recorder.wait(for: 1)
        #expect(throws: WebSocket.DOMError.invalidAccess(1001)) { try ws.close(code: 1001) }
        #expect(throws: WebSocket.DOMError.invalidAccess(5000)) { try ws.close(code: 5000) }
        #expect(throws: WebSocket.DOMError.syntax("close reason of 124 bytes exceeds 123")) {
            try ws.close(code: 4000, reason: String(repeating: "x", count: 124))
        }
        try ws.close(code: 4000, reason: "app")
        #expect(try await recorder.wait(for: 2) == ["open", "close 4000  true"])
        await server.shutdown()
    }

    @Test func bufferedAmountRisesUnderASlowReaderAndReturnsToZero() async throws {
        let (server, port) = try await echoServer(pauseFor: .seconds(1))
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/")
        ws.onopen = { recorder.record($0) }
        _ = try await recorder.wait(for: 1)
        let chunk = [UInt8](repeating: 7, count: 256 * 1024)
        for _ in 0..<40 { try ws.send(chunk) }  // 10 MiB into a server that reads nothing for a second
        try await Task.sleep(for: .milliseconds(300))
        let stalled = ws.bufferedAmount
        #expect(stalled > 4 << 20, "only \(stalled) bytes buffered while the server does not read")
        let deadline = ContinuousClock.now + .seconds(20)
        while ws.bufferedAmount > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(ws.bufferedAmount == 0)
        try ws.close()
        await server.shutdown()
    }

    @Test func binaryTypeAndTheDeliveryQueue() async throws {
        let (server, port) = try await echoServer()
        let queue = DispatchQueue(label: "test.delivery")
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/", delivery: .queue(queue))
        ws.binaryType = .bytes
        let check: WebSocket.Listener = { event in
            dispatchPrecondition(condition: .onQueue(queue))  // traps on any other thread
            recorder.record(event)
        }
        ws.onopen = { event in
            check(event)
            try? ws.send([9, 8] as [UInt8])
        }
        ws.onmessage = check
        _ = try await recorder.wait(for: 2)
        #expect(recorder.events.withLockedValue { $0 } == ["open", "bytes [9, 8]"])
        try ws.close()
        await server.shutdown()
    }

    /// A server stopped and started again on the same port: the socket reconnects with backoff,
    /// delivers open again (where the application rejoins), then sends what was queued meanwhile.
    @Test func reconnectsToARestartedServerAndSendsWhatWasQueued() async throws {
        let received = NIOLockedValueBox<[String]>([])
        func start(port: Int) async throws -> WebSocketServer {
            let server = WebSocketServer(configuration: .init(port: port), handler: .callbacks { ws in
                ws.onMessage = { ws, message in
                    received.withLockedValue { $0.append(message.text ?? "?") }
                    try? ws.send(message)
                }
            })
            try await server.start()
            return server
        }
        let (first, port) = try await echoServer()
        let recorder = Recorder()
        let prepared = NIOLockedValueBox(0)
        let reconnection = WebSocket.Reconnection(initialDelay: .milliseconds(50), maxDelay: .milliseconds(200), maxQueuedBytes: 10,
                                                  prepare: { configuration in
                                                      prepared.withLockedValue { $0 += 1 }
                                                      return configuration
                                                  })
        let ws = try WebSocket("ws://127.0.0.1:\(port)/", delivery: .queue(DispatchQueue(label: "test")), reconnection: reconnection)
        let opens = NIOLockedValueBox(0)
        ws.onopen = { event in
            recorder.record(event)
            let count = opens.withLockedValue { $0 += 1; return $0 }
            try? ws.send(count == 1 ? "first" : "rejoin")
        }
        ws.onmessage = { recorder.record($0) }
        ws.onclose = { recorder.record($0) }
        _ = try await recorder.wait(for: 2)  // open, text first

        await first.shutdown()  // close 1001 to the client, then nothing listens
        _ = try await recorder.wait(for: 3)
        #expect(ws.readyState == .connecting)
        try ws.send("queued")
        #expect(throws: WebSocket.DOMError.queueFull(limit: 10)) { try ws.send("too much") }
        #expect(ws.bufferedAmount == 6)
        try await Task.sleep(for: .milliseconds(500))  // a few failed attempts

        let second = try await start(port: port)
        let events = try await recorder.wait(for: 6)
        #expect(events == ["open", "text first", "close 1001 server shutting down true", "open", "text rejoin", "text queued"])
        #expect(received.withLockedValue { $0 } == ["rejoin", "queued"], "the application rejoins before the queue goes out")
        #expect(prepared.withLockedValue { $0 } >= 2, "prepare runs before every attempt")
        #expect(ws.readyState == .open)

        try ws.close(code: 1000)
        _ = try await recorder.wait(for: 7)
        #expect(recorder.events.withLockedValue { $0.last } == "close 1000  true")
        #expect(ws.readyState == .closed, "an application's close is final")
        await second.shutdown()
    }

    @Test func givesUpAfterMaxAttemptsAndStopsOnClose() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = listener.localAddress!.port!
        try await listener.close()
        let recorder = Recorder()
        let ws = try WebSocket("ws://127.0.0.1:\(port)/",
                               reconnection: .init(initialDelay: .milliseconds(10), maxDelay: .milliseconds(20), maxAttempts: 3))
        ws.onerror = { recorder.record($0) }
        ws.onclose = { recorder.record($0) }
        let events = try await recorder.wait(for: 5)
        #expect(events == ["error", "error", "error", "error", "close 1006  false"], "the first attempt and three more")

        // close() during a long backoff ends it at once.
        let patient = Recorder()
        let waiting = try WebSocket("ws://127.0.0.1:\(port)/", reconnection: .init(initialDelay: .seconds(30)))
        waiting.onerror = { patient.record($0) }
        waiting.onclose = { patient.record($0) }
        _ = try await patient.wait(for: 1)
        try waiting.close()
        #expect(try await patient.wait(for: 2, timeout: .seconds(5)) == ["error", "close 1006  false"])
    }
}
