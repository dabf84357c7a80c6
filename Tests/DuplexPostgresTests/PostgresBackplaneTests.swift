import Duplex
@testable import DuplexPostgres
import DuplexPubSub
import NIOCore
import Testing

/// The PostgreSQL backplane against a real PostgreSQL that each test starts for itself: two server
/// instances sharing channels, payloads beyond NOTIFY's limit, a PostgreSQL restart, and a
/// listener that catches up on what it missed. One test at a time: each makes a cluster (initdb is
/// CPU-heavy), and the rest of the suite has timing tests to share the machine with.
@Suite(.serialized, .timeLimit(.minutes(2))) struct PostgresBackplaneTests {
    @Test func twoServersShareAChannelEveryMemberGetsEveryMessageInOrder() async throws {
        let postgres = try await PostgresServer.start()
        defer { postgres.destroy() }
        let a = try await Node.start(postgres), b = try await Node.start(postgres)
        var members: [Member] = []
        for node in [a, b] { for _ in 0..<3 { members.append(try await node.member()) } }
        let outsider = try await b.member("elsewhere")
        let count = 100
        // Two publishers at once, one on each server; each is also a member (members[0] and [3]).
        let publisherA = members[0], publisherB = members[3]
        async let sentA: Void = { for index in 0..<count { try await publisherA.send(numbered("a", index)) } }()
        async let sentB: Void = { for index in 0..<count { try await publisherB.send(numbered("b", index)) } }()
        _ = try await (sentA, sentB)
        try await waitUntil("every member has \(2 * count) messages", state: {
            "received \(members.map(\.received.count)); a: \(a.backplaneState); b: \(b.backplaneState)"
        }) { members.allSatisfy { $0.received.count >= 2 * count } }
        try await Task.sleep(for: .milliseconds(200))
        for (index, member) in members.enumerated() {
            #expect(member.received.count == 2 * count, "member \(index): no duplicates")
            #expect(from("a", in: member.received) == (0..<count).map { numbered("a", $0) }, "member \(index): a in order")
            #expect(from("b", in: member.received) == (0..<count).map { numbered("b", $0) }, "member \(index): b in order")
        }
        #expect(outsider.received.isEmpty)
        await a.stop()
        await b.stop()
    }

    @Test func aPayloadLargerThanNotifyAllowsArrivesWhole() async throws {
        let postgres = try await PostgresServer.start()
        defer { postgres.destroy() }
        let a = try await Node.start(postgres), b = try await Node.start(postgres)
        let sender = try await a.member(), receiver = try await b.member()
        var bytes = ByteBuffer()
        for index in 0..<(256 << 10) { bytes.writeInteger(UInt8(truncatingIfNeeded: index &* 131 &+ index >> 9)) }
        let text = String(repeating: "Grüße, 世界 — ", count: 2_000)  // 34 000 bytes of UTF-8
        let small = WebSocketMessage.text("")
        for message in [WebSocketMessage.binary(bytes), .text(text), small] { try await sender.send(message) }
        try await waitUntil("both members have all three", state: {
            "received \(sender.received.count) and \(receiver.received.count); a: \(a.backplaneState); b: \(b.backplaneState)"
        }) { receiver.received.count >= 3 && sender.received.count >= 3 }
        for member in [sender, receiver] {
            #expect(member.received == [.binary(bytes), .text(text), small])
        }
        await a.stop()
        await b.stop()
    }

    /// PostgreSQL stops and starts again on the same port: what was published during the outage
    /// is held (up to the bound) and delivered everywhere, in order, after the reconnection.
    @Test func aPostgresRestartLosesNothingWithinTheQueueBound() async throws {
        let postgres = try await PostgresServer.start()
        defer { postgres.destroy() }
        let a = try await Node.start(postgres) { $0.maxQueuedMessages = 20 }
        let b = try await Node.start(postgres)
        let onA = [try await a.member(), try await a.member()], onB = [try await b.member(), try await b.member()]
        let everyone = onA + onB
        try await onA[0].send(.text("before"))
        try await waitUntil("everyone has the first message", state: {
            "received \(everyone.map(\.received.count)); a: \(a.backplaneState); b: \(b.backplaneState)"
        }) { everyone.allSatisfy { $0.received == [.text("before")] } }

        try await postgres.stop()
        try await waitUntil("both backplanes see the outage") { !a.backplane.isConnected && !b.backplane.isConnected }
        for index in 0..<30 {
            try await onA[0].send(numbered("a", index))
            try await onB[0].send(numbered("b", index))
        }
        try await waitUntil("the messages are queued") { a.backplane.queuedMessages == 20 && b.backplane.queuedMessages == 30 }
        #expect(everyone.allSatisfy { $0.received.count == 1 }, "nothing is delivered during the outage")

        try await postgres.start()
        try await waitUntil("both reconnect") { a.backplane.isConnected && b.backplane.isConnected }
        try await waitUntil("everyone has what was queued") { everyone.allSatisfy { $0.received.count >= 51 } }
        try await onB[1].send(.text("after"))
        try await waitUntil("everyone has the message after") { everyone.allSatisfy { $0.received.last == .text("after") } }
        for (index, member) in everyone.enumerated() {
            #expect(member.received.count == 52, "member \(index): the first, 20 of a, 30 of b, the last; no duplicates")
            #expect(from("a", in: member.received) == (0..<20).map { numbered("a", $0) }, "member \(index): a's first 20, the rest dropped")
            #expect(from("b", in: member.received) == (0..<30).map { numbered("b", $0) }, "member \(index): all of b in order")
        }
        #expect(a.backplane.queuedMessages == 0 && b.backplane.queuedMessages == 0)
        await a.stop()
        await b.stop()
    }

    /// One process's listening connection is cut while another goes on publishing: on
    /// reconnecting it reads the rows it missed from the table, in order, without duplicates.
    @Test func aListenerThatWasCutOffCatchesUp() async throws {
        let postgres = try await PostgresServer.start()
        defer { postgres.destroy() }
        let a = try await Node.start(postgres) { $0.initialReconnectDelay = .seconds(3); $0.maxReconnectDelay = .seconds(3) }
        let b = try await Node.start(postgres)
        let onA = try await a.member(), onB = try await b.member()
        try await onB.send(.text("b-start"))
        try await waitUntil("both have the first message", state: {
            "received \(onA.received.count) and \(onB.received.count); a: \(a.backplaneState); b: \(b.backplaneState)"
        }) { onA.received.count == 1 && onB.received.count == 1 }

        let cut = try await postgres.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'duplex-listener-\(a.backplane.origin.prefix(8))'")
        #expect(cut.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        try await waitUntil("a sees its listener go") { !a.backplane.isConnected }
        for index in 0..<20 { try await onB.send(numbered("b", index)) }
        try await onA.send(.text("a-while-away"))  // a's own publisher is still connected
        try await waitUntil("b's member has them all") { onB.received.count == 22 }
        #expect(!a.backplane.isConnected, "still reconnecting: what a's member gets next comes from the table")
        #expect(onA.received.count == 1)

        try await waitUntil("a's member catches up") { onA.received.count >= 22 }
        try await Task.sleep(for: .milliseconds(300))
        #expect(onA.received.count == 22, "once each")
        #expect(from("b", in: onA.received) == from("b", in: onB.received), "b's in b's order")
        #expect(onA.received.filter { $0 == .text("a-while-away") }.count == 1)
        await a.stop()
        await b.stop()
    }

    @Test func deliveredIDsForgetTheOldestAndSkipWhatWasThereAtStart() {
        var delivered = DeliveredIDs(capacity: 3)
        delivered.start(after: 10)
        #expect(!delivered.isMissed(9) && !delivered.isMissed(10) && delivered.isMissed(11))
        #expect(!delivered.contains(9), "a notified row below the start is still delivered")
        for id: Int64 in [12, 11, 14] { delivered.insert(id) }
        #expect(delivered.last == 14 && delivered.contains(12) && !delivered.isMissed(11) && delivered.isMissed(13))
        delivered.insert(15)
        #expect(!delivered.contains(12) && delivered.contains(11) && delivered.contains(15), "the oldest inserted is forgotten")
    }

    @Test func badURLsAndTableNamesAreRefusedWithTheReason() throws {
        #expect(throws: PostgresBackplaneError.self) { try PostgresBackplane.Configuration(url: "http://user@host/db") }
        #expect(throws: PostgresBackplaneError.self) { try PostgresBackplane.Configuration(url: "postgres://host/db") }
        #expect(throws: PostgresBackplaneError.self) { try PostgresBackplane.Configuration(url: "postgres://u@h/db?sslmode=verify-full") }
        let good = try PostgresBackplane.Configuration(url: "postgresql://duplex:secret@[::1]:6543/app")
        #expect(good.connection.host == "::1" && good.connection.port == 6543 && good.connection.username == "duplex")
        #expect(good.connection.password == "secret" && good.connection.database == "app")
        var named = good
        named.table = "messages; DROP TABLE x"
        #expect(throws: PostgresBackplaneError.self) { try PostgresBackplane(configuration: named) }
    }
}
