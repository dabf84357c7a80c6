import Duplex
import DuplexPubSub
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Channels over real sockets: fan-out in order to every member on every event loop (compressing or
/// not), a slow member closed without holding up the others, membership following closes, presence.
@Suite(.timeLimit(.minutes(1))) struct ChannelsTests {
    /// A server whose connections join the channel named by their path (`/room` joins "room").
    func server(_ channels: Channels, limits: ServerLimits = .init()) async throws -> (WebSocketServer, Int) {
        try await channels.start()
        let server = WebSocketServer(
            configuration: .init(port: 0, limits: limits, compression: .init()),
            handler: .callbacks { ws in channels.join(ws, String(ws.request.target.dropFirst())) })
        return (server, try await server.start().port!)
    }

    func waitUntil(_ condition: () -> Bool, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("condition not met within \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func everyMemberGetsEveryMessageInOrder() async throws {
        let presence = NIOLockedValueBox<[Channels.PresenceEvent.Change]>([])
        let channels = Channels(onPresence: { event in presence.withLockedValue { $0.append(event.change) } })
        let (server, port) = try await server(channels)
        var members: [WebSocketClientConnection] = []
        for index in 0..<30 {  // spread over the event loops; every third one compresses
            members.append(try await WebSocketClient.connect(
                to: "ws://127.0.0.1:\(port)/room", configuration: .init(compression: index % 3 == 0 ? .init() : nil)))
        }
        let outsider = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/other")
        try await waitUntil { channels.memberCount(of: "room") == 30 }

        let count = 200
        for index in 0..<count {
            channels.publish(index % 2 == 0 ? .text("message \(index)") : .binary(ByteBuffer(string: "bytes \(index)")), to: "room")
        }
        try await withThrowingTaskGroup(of: [WebSocketMessage].self) { group in
            for member in members {
                group.addTask {
                    var received: [WebSocketMessage] = []
                    for await message in member.inbound {
                        received.append(message)
                        if received.count == count { break }
                    }
                    return received
                }
            }
            let expected = (0..<count).map { $0 % 2 == 0 ? WebSocketMessage.text("message \($0)") : .binary(ByteBuffer(string: "bytes \($0)")) }
            for try await received in group { #expect(received == expected) }
        }
        // Nothing reached the other channel.
        try await outsider.outbound.write(.text("alone"))
        _ = try await outsider.outbound.close()

        for member in members.prefix(10) { _ = try await member.outbound.close() }
        try await waitUntil { channels.memberCount(of: "room") == 20 }
        #expect(presence.withLockedValue { $0.filter { $0 == .joined }.count } == 31)
        #expect(presence.withLockedValue { $0.filter { $0 == .left }.count } >= 11)
        await server.shutdown()
        await channels.shutdown()
    }

    @Test func aSlowMemberIsClosedAndTheOthersGetEverything() async throws {
        let channels = Channels()
        let (server, port) = try await server(channels, limits: ServerLimits(maxBufferedBytes: 1 << 20))
        let fast = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/feed")
        // A member that reads nothing.
        let slow = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
            .connect(host: "127.0.0.1", port: port).get()
        try await slow.writeAndFlush(ByteBuffer(string: upgradeRequest(path: "/feed"))).get()
        try await Task.sleep(for: .milliseconds(100))
        try await slow.setOption(ChannelOptions.autoRead, value: false).get()
        try await waitUntil { channels.memberCount(of: "feed") == 2 }

        let count = 600
        let payload = ByteBuffer(repeating: 0x5A, count: 16 * 1024)  // 9.4 MiB in all
        let progress = NIOLockedValueBox(0)
        let received = Task {
            for await message in fast.inbound where message.data == payload {
                let received = progress.withLockedValue { $0 += 1; return $0 }
                if received == count { break }
            }
            return progress.withLockedValue { $0 }
        }
        // The publisher stays within 32 messages (512 KiB) of the healthy member, however loaded the
        // machine: that member is never over its limit, the one that reads nothing soon is.
        for index in 0..<count {
            while index - progress.withLockedValue({ $0 }) >= 32 { try await Task.sleep(for: .milliseconds(1)) }
            channels.publish(.binary(payload), to: "feed")
        }
        let got = await received.value
        if got != count {
            let info = await fast.outbound.closeInfo()
            Issue.record("fast member: \(got) of \(count), closed: \(info)")
        }
        try await waitUntil { channels.memberCount(of: "feed") == 1 }  // the slow one was closed and left
        slow.close(promise: nil)
        _ = try await fast.outbound.close()
        await server.shutdown()
    }
}
