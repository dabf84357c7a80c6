import DuplexCore
import NIOCore
import Testing

@Suite struct ConnectionTests {
    let now = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func server(_ configuration: Connection.Configuration = .init()) -> Connection {
        Connection(role: .server, configuration: configuration)
    }

    func closeFrame(_ code: UInt16?, _ reason: [UInt8] = []) -> ByteBuffer {
        var payload: [UInt8] = []
        if let code { payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + reason }
        return wireFrame(opcode: 8, payload: payload)
    }

    @Test func singleFrameMessagesOfBothKinds() {
        var connection = server()
        connection.receive(wireFrame(opcode: 1, payload: Array("hi".utf8)))
        connection.receive(wireFrame(opcode: 2, payload: [0, 1, 2]))
        let messages = connection.drainEvents().messages
        #expect(messages == [.text("hi"), .binary([0, 1, 2])])
    }

    @Test func manyFramesInOneRead() {
        var wire = ByteBuffer()
        for index in 0..<50 { wire.writeImmutableBuffer(wireFrame(opcode: 1, payload: Array("m\(index)".utf8))) }
        var connection = server()
        connection.receive(wire)
        #expect(connection.drainEvents().messages.map(\.text) == (0..<50).map { "m\($0)" })
    }

    @Test func pingIsAnsweredWithTheSamePayload() {
        var connection = server()
        connection.receive(wireFrame(opcode: 9, payload: [1, 2, 3]))
        #expect(connection.drainEvents() == [.ping(ByteBuffer(bytes: [1, 2, 3]))])
        let replies = connection.drainOutbound()
        #expect(replies.count == 1)
        #expect(replies[0].opcode == .pong && replies[0].payload.bytes == [1, 2, 3])
        #expect(replies[0].header.maskingKey == nil)  // servers do not mask
    }

    @Test func clientMasksWhatItSends() throws {
        var client = Connection(role: .client)
        try client.send(.text("hello"))
        let frame = client.nextOutboundFrame()!
        #expect(frame.header.maskingKey != nil)
        var payload = frame.payload
        payload.applyMask(frame.header.maskingKey!)
        #expect(String(buffer: payload) == "hello")
    }

    /// Keys come from a batch generator (64 per refill): across many batches they keep varying,
    /// each frame is masked with its own key, and every payload unmasks to what was sent.
    @Test func clientMaskingKeysVaryAcrossBatches() throws {
        var client = Connection(role: .client)
        var keys: [UInt32] = []
        for index in 0..<1000 {
            try client.send(.binary(ByteBuffer(bytes: [UInt8(truncatingIfNeeded: index), 1, 2, 3])))
            let next = client.nextOutboundFrame()
            let frame = try #require(next)
            let key = try #require(frame.header.maskingKey)
            keys.append(UInt32(key.bytes.0) | UInt32(key.bytes.1) << 8 | UInt32(key.bytes.2) << 16 | UInt32(key.bytes.3) << 24)
            var payload = frame.payload
            payload.applyMask(key)
            #expect(Array(payload.readableBytesView) == [UInt8(truncatingIfNeeded: index), 1, 2, 3])
        }
        // 1,000 random 32-bit keys collide with probability about 1e-4; a stuck or repeating
        // generator gives far fewer distinct ones.
        #expect(Set(keys).count >= 998)
    }

    @Test func fragmentedMessageWithControlFramesBetween() {
        var connection = server()
        connection.receive(wireFrame(fin: false, opcode: 1, payload: Array("Hel".utf8)))
        connection.receive(wireFrame(opcode: 9, payload: [7]))
        connection.receive(wireFrame(fin: false, opcode: 0, payload: Array("lo, ".utf8)))
        connection.receive(wireFrame(opcode: 10, payload: []))
        connection.receive(wireFrame(opcode: 0, payload: Array("world".utf8)))
        let events = connection.drainEvents()
        #expect(events == [.ping(ByteBuffer(bytes: [7])), .pong(ByteBuffer()), .message(.text("Hello, world"))])
    }

    @Test func codePointSplitAcrossFragments() {
        let bytes = Array("€".utf8)  // E2 82 AC
        var connection = server()
        connection.receive(wireFrame(fin: false, opcode: 1, payload: [bytes[0]]))
        connection.receive(wireFrame(fin: false, opcode: 0, payload: [bytes[1]]))
        connection.receive(wireFrame(opcode: 0, payload: [bytes[2]]))
        #expect(connection.drainEvents().messages == [.text("€")])
    }

    @Test func invalidUTF8FailsAtTheFragmentThatCarriesIt() {
        var connection = server()
        connection.receive(wireFrame(fin: false, opcode: 1, payload: Array("ok".utf8)))
        connection.receive(wireFrame(fin: false, opcode: 0, payload: [0xCE, 0xBA, 0xF4, 0x90]))  // > U+10FFFF
        let events = connection.drainEvents()
        #expect(events.closeInfo?.code == .invalidPayload)
        #expect(events.closeInfo?.error == .invalidUTF8)
        #expect(connection.readyState == .closed)
        let sent = connection.drainOutbound()
        #expect(sent.last?.opcode == .close)
        #expect(sent.last?.payload.getInteger(at: sent.last!.payload.readerIndex, as: UInt16.self) == 1007)
    }

    @Test func invalidUTF8FailsBeforeTheFrameIsComplete() {
        var wire = wireFrame(opcode: 1, payload: Array("hello".utf8) + [0xFF] + Array(repeating: 0x61, count: 1000))
        var connection = server()
        connection.receive(wire.readSlice(length: 20)!)  // header + "hello" + the bad byte, not the rest
        #expect(connection.drainEvents().closeInfo?.code == .invalidPayload)
    }

    @Test func truncatedCodePointAtMessageEndFails() {
        var connection = server()
        connection.receive(wireFrame(opcode: 1, payload: [0x61, 0xE2, 0x82]))
        #expect(connection.drainEvents().closeInfo?.code == .invalidPayload)
    }

    @Test func continuationWithoutAMessageFails() {
        var connection = server()
        connection.receive(wireFrame(opcode: 0, payload: [1]))
        #expect(connection.drainEvents().closeInfo?.error == .unexpectedContinuation)
    }

    @Test func newMessageInsideAFragmentedOneFails() {
        var connection = server()
        connection.receive(wireFrame(fin: false, opcode: 1, payload: [0x61]))
        connection.receive(wireFrame(opcode: 1, payload: [0x62]))
        let info = connection.drainEvents().closeInfo
        #expect(info?.error == .expectedContinuation)
        #expect(info?.code == .protocolError)
        #expect(info?.wasClean == false)
    }

    @Test func messageSizeLimitAcrossFragments() {
        var connection = server(.init(maxMessageSize: 10))
        connection.receive(wireFrame(fin: false, opcode: 2, payload: [UInt8](repeating: 0, count: 6)))
        connection.receive(wireFrame(opcode: 0, payload: [UInt8](repeating: 0, count: 6)))
        #expect(connection.drainEvents().closeInfo?.code == .messageTooBig)
    }

    @Test func frameSizeLimit() {
        var connection = server(.init(maxFrameSize: 100))
        connection.receive(wireFrame(opcode: 2, payload: [UInt8](repeating: 0, count: 101)))
        #expect(connection.drainEvents().closeInfo?.code == .messageTooBig)
    }

    @Test func peerInitiatedCloseIsEchoed() {
        var connection = server()
        connection.receive(closeFrame(1000, Array("bye".utf8)))
        let info = connection.drainEvents().closeInfo
        #expect(info == CloseInfo(code: .normalClosure, reason: "bye", wasClean: true))
        let echo = connection.drainOutbound()
        #expect(echo.count == 1 && echo[0].opcode == .close)
        #expect(echo[0].payload.bytes == [0x03, 0xE8])
        #expect(connection.readyState == .closed)
    }

    @Test func emptyCloseIsEchoedEmptyAndReportedAs1005() {
        var connection = server()
        connection.receive(closeFrame(nil))
        #expect(connection.drainEvents().closeInfo?.code == .noStatusReceived)
        #expect(connection.drainOutbound().first?.payload.readableBytes == 0)
    }

    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] as [UInt16])
    func invalidCloseCodesFailWith1002(_ code: UInt16) {
        var connection = server()
        connection.receive(closeFrame(code))
        let info = connection.drainEvents().closeInfo
        #expect(info?.code == .protocolError)
        #expect(info?.error == .invalidCloseCode(code))
    }

    @Test(arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999] as [UInt16])
    func validCloseCodesAreAccepted(_ code: UInt16) {
        var connection = server()
        connection.receive(closeFrame(code))
        let info = connection.drainEvents().closeInfo
        #expect(info == CloseInfo(code: CloseCode(rawValue: code), wasClean: true))
    }

    @Test func oneByteCloseFails() {
        var connection = server()
        connection.receive(wireFrame(opcode: 8, payload: [0x03]))
        #expect(connection.drainEvents().closeInfo?.error == .closePayloadTooShort)
    }

    @Test func invalidUTF8CloseReasonFailsWith1007() {
        var connection = server()
        connection.receive(closeFrame(1000, [0xFF]))
        #expect(connection.drainEvents().closeInfo?.code == .invalidPayload)
    }

    @Test func locallyInitiatedCloseHandshake() throws {
        var connection = server()
        try connection.close(code: .goingAway, reason: "shutdown", now: now)
        #expect(connection.readyState == .closing)
        #expect(connection.closeDeadline == now + .seconds(5))
        let sent = connection.drainOutbound()
        #expect(sent.map(\.opcode) == [.close])
        #expect(Array(sent[0].payload.bytes.dropFirst(2)) == Array("shutdown".utf8))
        #expect(throws: ConnectionError.notOpen(.closing)) { try connection.send(.text("late")) }
        // Messages still arriving while closing are delivered; pings no longer answered.
        connection.receive(wireFrame(opcode: 1, payload: Array("in flight".utf8)))
        connection.receive(wireFrame(opcode: 9, payload: []))
        #expect(connection.drainOutbound().isEmpty)
        connection.receive(closeFrame(1001))
        let events = connection.drainEvents()
        #expect(events.messages == [.text("in flight")])
        #expect(events.closeInfo == CloseInfo(code: .goingAway, wasClean: true))
        #expect(connection.drainOutbound().isEmpty)  // no second close frame
    }

    @Test func closeTimeoutEndsAPeerThatNeverAnswers() throws {
        var connection = server(.init(closeTimeout: .seconds(2)))
        try connection.close(now: now)
        let early = connection.closeTimeoutExpired(now: now + .seconds(1))
        #expect(!early)
        #expect(connection.readyState == .closing)
        let expired = connection.closeTimeoutExpired(now: now + .seconds(2))
        #expect(expired)
        let info = connection.drainEvents().closeInfo
        #expect(info?.code == .abnormalClosure && info?.wasClean == false)
    }

    @Test func abandonSendsACloseFrameAndEndsAtOnce() throws {
        var connection = server()
        connection.abandon(reason: "ping timeout")
        #expect(connection.readyState == .closed)
        #expect(connection.drainEvents().closeInfo == CloseInfo(code: .internalError, reason: "ping timeout", wasClean: false))
        let frames = connection.drainOutbound()
        #expect(frames.count == 1 && frames[0].opcode == .close)
        #expect(frames[0].payload.bytes == [0x03, 0xF3] + Array("ping timeout".utf8))
        connection.abandon(reason: "again")  // already closed: nothing more
        #expect(connection.drainEvents().isEmpty && connection.drainOutbound().isEmpty)

        // While closing, no second close frame: it only ends.
        var closing = server()
        try closing.close(now: now)
        _ = closing.drainOutbound()
        closing.abandon(reason: "ping timeout")
        #expect(closing.drainOutbound().isEmpty)
        #expect(closing.drainEvents().closeInfo?.wasClean == false)
    }

    @Test func closeArgumentsAreValidated() {
        var connection = server()
        let now = self.now
        #expect(throws: ConnectionError.invalidCloseCode(1005)) { try connection.close(code: .noStatusReceived, now: now) }
        let reason = String(repeating: "x", count: 124)
        #expect(throws: ConnectionError.closeReasonTooLong(124)) { try connection.close(reason: reason, now: now) }
        #expect(connection.readyState == .open)
    }

    @Test func controlPayloadLimit() {
        var connection = server()
        #expect(throws: ConnectionError.controlPayloadTooLong(126)) { try connection.sendPing(ByteBuffer(repeating: 0, count: 126)) }
    }

    @Test func eofWithoutCloseIsAbnormal() {
        var connection = server()
        connection.receive(wireFrame(fin: false, opcode: 1, payload: [0x61]))
        connection.receiveEOF()
        #expect(connection.drainEvents().closeInfo == CloseInfo(code: .abnormalClosure, reason: "connection closed without a close frame", wasClean: false))
    }

    @Test func bytesAfterCloseAreIgnored() {
        var connection = server()
        var wire = closeFrame(1000)
        wire.writeImmutableBuffer(wireFrame(opcode: 1, payload: Array("late".utf8)))
        connection.receive(wire)
        let events = connection.drainEvents()
        #expect(events.messages.isEmpty && events.count == 1)
    }

    @Test func outboundFragmentation() throws {
        var connection = server(.init(outboundFragmentSize: 4))
        try connection.send(.text("abcdefghij"))
        let frames = connection.drainOutbound()
        #expect(frames.map(\.opcode) == [.text, .continuation, .continuation])
        #expect(frames.map(\.fin) == [false, false, true])
        #expect(frames.map { String(buffer: $0.payload) } == ["abcd", "efgh", "ij"])
    }

    @Test func clientRejectsMaskedServerFrames() {
        var client = Connection(role: .client)
        client.receive(wireFrame(opcode: 1, payload: [0x61]))
        #expect(client.drainEvents().closeInfo?.error == .maskedServerFrame)
    }
}

@Suite struct ConnectionOrderingTests {
    @Test func messagesBeforeAViolationInTheSameReadCanStillBeAnswered() throws {
        var connection = Connection(role: .server)
        var wire = wireFrame(opcode: 1, payload: Array("Hello".utf8))
        wire.writeImmutableBuffer(wireFrame(rsv: 2, opcode: 1, payload: Array("bad".utf8)))
        connection.receive(wire)
        #expect(connection.nextEvent() == .message(.text("Hello")))
        try connection.send(.text("Hello"))  // the echo is still accepted
        let info = connection.drainEvents().closeInfo
        #expect(info?.error == .reservedBitsSet(2))
        #expect(connection.drainOutbound().map(\.opcode) == [.text, .close])
    }

    @Test func messagesBeforeACloseInTheSameReadCanStillBeAnswered() throws {
        var connection = Connection(role: .server)
        var wire = wireFrame(opcode: 1, payload: Array("last words".utf8))
        wire.writeImmutableBuffer(wireFrame(opcode: 8, payload: [0x03, 0xE8]))
        connection.receive(wire)
        #expect(connection.nextEvent() == .message(.text("last words")))
        #expect(connection.readyState == .open)
        try connection.send(.text("last words"))
        #expect(connection.nextEvent() == .closed(CloseInfo(code: .normalClosure, wasClean: true)))
        #expect(connection.drainOutbound().map(\.opcode) == [.text, .close])
    }
}
