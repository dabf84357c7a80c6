import DuplexCore
import NIOCore
import Testing

/// A stand-in codec that "compresses" by prefixing a marker byte (0xAA) and records how Connection
/// calls it, so the wiring is tested apart from zlib.
final class MarkerCodec: MessageCompression {
    var pieces: [(bytes: [UInt8], isFinal: Bool)] = []
    private var atMessageStart = true

    func compress(_ payload: ByteBuffer) throws(ProtocolError) -> ByteBuffer? {
        guard payload.readableBytes >= 4 else { return nil }  // a threshold, as a real codec has
        var out = ByteBuffer(bytes: [0xAA])
        out.writeImmutableBuffer(payload)
        return out
    }

    func decompress(_ piece: ByteBuffer, isFinal: Bool, into output: inout ByteBuffer, limit: Int) throws(ProtocolError) {
        pieces.append((Array(piece.readableBytesView), isFinal))
        var piece = piece
        if atMessageStart, piece.readInteger(as: UInt8.self) != 0xAA { throw .extensionFailure("no marker") }
        atMessageStart = isFinal
        if output.readableBytes + piece.readableBytes > limit { throw .messageTooLarge(limit: limit) }
        output.writeBuffer(&piece)
    }
}

@Suite struct CompressionWiringTests {
    @Test func rsv1IsRejectedWithoutCompression() {
        var connection = Connection(role: .server)
        connection.receive(wireFrame(rsv: 4, opcode: 1, payload: [0xAA, 0x61]))
        #expect(connection.drainEvents().closeInfo?.error == .reservedBitsSet(4))
    }

    @Test func compressedMessageIsInflatedAndValidated() {
        let codec = MarkerCodec()
        var connection = Connection(role: .server, compression: codec)
        connection.receive(wireFrame(rsv: 4, opcode: 1, payload: [0xAA] + Array("hello".utf8)))
        #expect(connection.drainEvents().messages == [.text("hello")])
        #expect(codec.pieces.map(\.isFinal) == [true])
    }

    @Test func uncompressedMessageBypassesTheCodec() {
        let codec = MarkerCodec()
        var connection = Connection(role: .server, compression: codec)
        connection.receive(wireFrame(opcode: 2, payload: [0xAA, 1]))
        #expect(connection.drainEvents().messages == [.binary([0xAA, 1])])
        #expect(codec.pieces.isEmpty)
    }

    @Test func fragmentsAreInflatedOneByOneAndRSV1OnlyOnTheFirst() {
        let codec = MarkerCodec()
        var connection = Connection(role: .server, compression: codec)
        connection.receive(wireFrame(fin: false, rsv: 4, opcode: 1, payload: [0xAA] + Array("ab".utf8)))
        connection.receive(wireFrame(fin: false, opcode: 0, payload: Array("cd".utf8)))
        connection.receive(wireFrame(opcode: 0, payload: Array("ef".utf8)))
        #expect(connection.drainEvents().messages == [.text("abcdef")])
        #expect(codec.pieces.map(\.isFinal) == [false, false, true])

        var again = Connection(role: .server, compression: MarkerCodec())
        again.receive(wireFrame(fin: false, rsv: 4, opcode: 1, payload: [0xAA, 0x61]))
        again.receive(wireFrame(rsv: 4, opcode: 0, payload: [0x62]))
        #expect(again.drainEvents().closeInfo?.error == .reservedBitsSet(4))
    }

    @Test func invalidUTF8InAnInflatedFragmentFailsAtThatFragment() {
        var connection = Connection(role: .server, compression: MarkerCodec())
        connection.receive(wireFrame(fin: false, rsv: 4, opcode: 1, payload: [0xAA, 0x61, 0xFF]))
        #expect(connection.drainEvents().closeInfo?.code == .invalidPayload)
    }

    @Test func theMessageLimitIsPassedToTheCodec() {
        var connection = Connection(role: .server, configuration: .init(maxMessageSize: 4), compression: MarkerCodec())
        connection.receive(wireFrame(rsv: 4, opcode: 2, payload: [0xAA, 1, 2, 3, 4, 5]))
        #expect(connection.drainEvents().closeInfo?.code == .messageTooBig)
    }

    @Test func sendCompressesAboveTheThresholdAndSetsRSV1OnTheFirstFrameOnly() throws {
        var connection = Connection(role: .server, configuration: .init(outboundFragmentSize: 3), compression: MarkerCodec())
        try connection.send(.text("hi"))                 // below the codec's threshold
        try connection.send(.text("hello"))              // compressed: AA h e l l o → 6 bytes, 2 frames
        try connection.send(.text("hello"), compress: false)
        let frames = connection.drainOutbound()
        #expect(frames.map(\.rsv) == [0, 4, 0, 0, 0])
        #expect(frames.map(\.opcode) == [.text, .text, .continuation, .text, .continuation])
        #expect(frames[1].payload.readableBytesView.first == 0xAA)
    }
}
