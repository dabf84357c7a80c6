@testable import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Heartbeats over real sockets: a peer that keeps TCP open but never reads nor answers is found
/// within interval + timeout, by protocol pings and by application pings, on both ends; a live peer
/// is left alone; browsers' JSON pings are answered and not delivered.
@Suite(.timeLimit(.minutes(1))) struct HeartbeatTests {
    static let interval = TimeAmount.milliseconds(300)
    /// Long enough that a live peer on a loaded machine (the whole suite runs at once on two cores)
    /// is not taken for a dead one.
    static let timeout = TimeAmount.milliseconds(1_000)
    /// Interval + timeout, and room for a loaded machine.
    static let detectionBound = Duration.milliseconds(1_300 + 2_500)

    /// A server whose connections report how they closed; `/mute` connections stop reading (so they
    /// never answer a ping), the others echo.
    final class Observed: Sendable {
        let closes = NIOLockedValueBox<[String: CloseInfo]>([:])
        let delivered = NIOLockedValueBox<[String]>([])

        func handler() -> WebSocketServer.Handler {
            .callbacks { [self] ws in
                let path = ws.request.target
                if path == "/mute" { ws.pauseReading() }
                ws.onMessage = { [self] ws, message in
                    delivered.withLockedValue { $0.append(message.text ?? "binary") }
                    try? ws.send(message)
                }
                ws.onClose = { [self] _, info in closes.withLockedValue { $0[path] = info } }
            }
        }

        func close(of path: String, within bound: Duration = .seconds(10)) async throws -> CloseInfo {
            let deadline = ContinuousClock.now + bound
            while ContinuousClock.now < deadline {
                if let info = closes.withLockedValue({ $0[path] }) { return info }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw TestFailure("\(path) not closed within \(bound)")
        }
    }

    /// A client that completes the handshake and then neither reads nor writes.
    func deadClient(port: Int) async throws -> any Channel {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: upgradeRequest(path: "/dead"))).get()
        try await Task.sleep(for: .milliseconds(50))
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
        return channel
    }

    @Test(arguments: [Heartbeat.Style.protocolPing, .application(.json)])
    func serverFindsADeadClientAndKeepsALiveOne(style: Heartbeat.Style) async throws {
        let observed = Observed()
        let server = WebSocketServer(
            configuration: .init(port: 0, heartbeat: Heartbeat(pingInterval: Self.interval, pingTimeout: Self.timeout, style: style)),
            handler: observed.handler())
        let port = try await server.start().port!
        // The live client answers protocol pings itself; for application pings it runs the
        // browser's side: answer each JSON ping with its pong.
        let answering: ApplicationHeartbeat? = if case .application = style { .json } else { nil }
        let live = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/live", configuration: .init(heartbeat: .init(answering: answering)))
        let dead = try await deadClient(port: port)
        let start = ContinuousClock.now
        let info = try await observed.close(of: "/dead")
        let elapsed = ContinuousClock.now - start
        #expect(info.code == .internalError)
        #expect(info.reason == "ping timeout")
        #expect(!info.wasClean)
        #expect(elapsed < Self.detectionBound, "found after \(elapsed)")
        try await dead.closeFuture.get()  // the server closed TCP at once

        // The live one, several intervals on, is still open and exchanging.
        var iterator = live.inbound.makeAsyncIterator()
        for index in 0..<5 {
            try await live.outbound.write(.text("live \(index)"))
            #expect(await iterator.next() == .text("live \(index)"))
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(observed.closes.withLockedValue { $0["/live"] } == nil)
        // The server's application pings were answered by the client's heartbeat, not delivered.
        #expect(observed.delivered.withLockedValue { $0 } == (0..<5).map { "live \($0)" })
        _ = try await live.outbound.close()
        await server.shutdown()
    }

    @Test(arguments: [Heartbeat.Style.protocolPing, .application(.json)])
    func clientFindsAServerThatStoppedAnswering(style: Heartbeat.Style) async throws {
        let observed = Observed()
        let server = WebSocketServer(configuration: .init(port: 0, heartbeat: .init(answering: .json)), handler: observed.handler())
        let port = try await server.start().port!
        let heartbeat = Heartbeat(pingInterval: Self.interval, pingTimeout: Self.timeout, style: style)

        // A server that answers (protocol pongs from its stack, JSON pongs from its heartbeat) keeps the client open…
        let live = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/live", configuration: .init(heartbeat: heartbeat))
        try await Task.sleep(for: .milliseconds(1_500))
        var iterator = live.inbound.makeAsyncIterator()
        try await live.outbound.write(.text("still here"))
        #expect(await iterator.next() == .text("still here"), "pongs are not delivered as messages")

        // …one that stopped reading is found.
        let mute = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/mute", configuration: .init(heartbeat: heartbeat))
        let start = ContinuousClock.now
        let info = await mute.outbound.closeInfo()
        let elapsed = ContinuousClock.now - start
        #expect(info.code == .internalError)
        #expect(info.reason == "ping timeout")
        #expect(!info.wasClean)
        #expect(elapsed < Self.detectionBound, "found after \(elapsed)")
        _ = try await live.outbound.close()
        await server.shutdown()
    }

    @Test func serverAnswersBrowserJSONPingsAndDeliversTheRest() async throws {
        let observed = Observed()
        let server = WebSocketServer(configuration: .init(port: 0, heartbeat: .init(answering: .json)), handler: observed.handler())
        let port = try await server.start().port!
        let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/")
        var iterator = ws.inbound.makeAsyncIterator()
        try await ws.outbound.write(.text(#"{"type":"ping","value":1584622155785}"#))
        #expect(await iterator.next() == .text(#"{"pong":"1584622155785"}"#))
        try await ws.outbound.write(.text(#" { "value" : "a\"b" , "type":"ping", "extra": [1] } "#))
        #expect(await iterator.next() == .text(#" { "value" : "a\"b" , "type":"ping", "extra": [1] } "#), "nested values: not a heartbeat")
        try await ws.outbound.write(.text(#"{ "value" : "a\"b" , "type":"ping", "n": null }"#))
        #expect(await iterator.next() == .text(#"{"pong":"a\"b"}"#))
        try await ws.outbound.write(.text(#"{"type":"chat","value":1}"#))
        #expect(await iterator.next() == .text(#"{"type":"chat","value":1}"#))
        #expect(observed.delivered.withLockedValue { $0 } == [#" { "value" : "a\"b" , "type":"ping", "extra": [1] } "#, #"{"type":"chat","value":1}"#])
        _ = try await ws.outbound.close()
        await server.shutdown()
    }

    @Test func jsonHeartbeatFormat() {
        let json = ApplicationHeartbeat.json
        #expect(json.pingValue(#"{"type":"ping","value":1584622155785}"#) == "1584622155785")
        #expect(json.pingValue(#"{"type":"ping","value":"x\u00e9"}"#) == "xé")
        #expect(json.pingValue(#"{"type":"ping"}"#) == nil)
        #expect(json.pingValue(#"{"type":"pong","value":1}"#) == nil)
        #expect(json.pingValue(#"{"type":"ping","value":1} trailing"#) == nil)
        #expect(json.pingValue("ping") == nil)
        #expect(json.pingValue(#"{"type":"ping","value":1e3}"#) == "1e3")
        #expect(json.pingValue(#"{"type":"ping","value":1-}"#) == nil)
        #expect(json.makePing("42") == #"{"type":"ping","value":42}"#)
        #expect(json.makePong("4\"2") == #"{"pong":"4\"2"}"#)
        #expect(json.pongValue(json.makePong("4\"2\n")) == "4\"2\n")
        #expect(json.pongValue(#"{"pong":1}"#) == nil)
        let now = Int64(ApplicationHeartbeat.nowMilliseconds())!
        #expect(now > 1_700_000_000_000, "milliseconds since 1970, as Date.now() gives")
    }
}
