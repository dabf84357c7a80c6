public import NIOCore

/// The operation a WebSocket frame carries (RFC 6455 §5.2).
///
/// Opcodes 0x3-0x7 and 0xB-0xF are reserved; ``FrameDecoder`` fails the connection with
/// ``CloseCode/protocolError`` when it meets one, so they have no case here.
public enum Opcode: UInt8, Sendable, Hashable, CaseIterable {
    /// A continuation of a fragmented message.
    case continuation = 0x0
    /// The first (or only) frame of a text message.
    case text = 0x1
    /// The first (or only) frame of a binary message.
    case binary = 0x2
    /// A close frame: a status code and a reason.
    case close = 0x8
    /// A ping, answered by a pong with the same payload.
    case ping = 0x9
    /// A pong, the answer to a ping (or an unsolicited heartbeat).
    case pong = 0xA

    /// Whether this is a control opcode (close, ping, pong): at most 125 bytes and never fragmented.
    @inlinable
    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// The four-byte key a client XORs over every payload it sends (RFC 6455 §5.3).
public struct MaskingKey: Sendable, Hashable {
    /// The key's four bytes, in wire order.
    public var bytes: (UInt8, UInt8, UInt8, UInt8)

    /// Creates a key from its four bytes in wire order.
    @inlinable
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) {
        self.bytes = (b0, b1, b2, b3)
    }

    /// A key from a strong source of randomness, as RFC 6455 §10.3 requires of clients.
    public static func random() -> MaskingKey {
        var generator = SystemRandomNumberGenerator()
        return MaskingKey(randomBits: generator.next())
    }

    /// The key whose wire bytes are `bits`' four bytes, lowest first.
    init(randomBits bits: UInt32) {
        self.init(UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                  UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24))
    }

    @inlinable
    public static func == (lhs: MaskingKey, rhs: MaskingKey) -> Bool {
        lhs.bytes.0 == rhs.bytes.0 && lhs.bytes.1 == rhs.bytes.1 && lhs.bytes.2 == rhs.bytes.2 && lhs.bytes.3 == rhs.bytes.3
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(bytes.0); hasher.combine(bytes.1); hasher.combine(bytes.2); hasher.combine(bytes.3)
    }

    /// The byte of the key that applies to payload byte `index`.
    @inlinable
    public subscript(index: Int) -> UInt8 {
        switch index & 3 {
        case 0: return bytes.0
        case 1: return bytes.1
        case 2: return bytes.2
        default: return bytes.3
        }
    }
}

/// The fixed part of a frame: everything but the payload bytes (RFC 6455 §5.2).
public struct FrameHeader: Sendable, Hashable {
    /// Whether this is the final frame of its message.
    public var fin: Bool
    /// The three reserved bits, RSV1 in bit 2 (0b100), RSV2 in bit 1, RSV3 in bit 0.
    /// Non-zero only when a negotiated extension gives them a meaning.
    public var rsv: UInt8
    /// The frame's opcode.
    public var opcode: Opcode
    /// The masking key, present exactly on frames a client sends.
    public var maskingKey: MaskingKey?
    /// The length of the payload in bytes.
    public var payloadLength: Int

    /// Creates a header. The defaults describe a final, unmasked frame with no reserved bits.
    @inlinable
    public init(fin: Bool = true, rsv: UInt8 = 0, opcode: Opcode, maskingKey: MaskingKey? = nil, payloadLength: Int) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.maskingKey = maskingKey
        self.payloadLength = payloadLength
    }

    /// Whether RSV1 is set; permessage-deflate uses it to mark a compressed message.
    @inlinable
    public var rsv1: Bool { rsv & 0b100 != 0 }

    /// The number of bytes ``write(into:)`` writes: 2 to 14.
    @inlinable
    public var encodedSize: Int {
        let lengthSize = payloadLength < 126 ? 0 : (payloadLength <= 0xFFFF ? 2 : 8)
        return 2 + lengthSize + (maskingKey == nil ? 0 : 4)
    }

    /// The most bytes a header takes: 2, 8 for the longest length form and 4 for a masking key.
    /// Payloads that Duplex copies anyway (to unmask or mask them) get this much room in front of their
    /// bytes, so that ``prepend(to:)`` can later put their header there.
    public static let maxEncodedSize = 14

    /// Writes the header into the room just before `payload`'s readable bytes and moves its reader
    /// index back over it, so that the whole frame goes to the socket as one buffer, without copying
    /// the payload.
    ///
    /// - Returns: `false`, leaving `payload` as it was, when there is not room for the header before
    ///   the readable bytes, or when another buffer shares `payload`'s storage (writing would copy
    ///   the payload): write the header and the payload separately then.
    @inlinable
    public func prepend(to payload: inout ByteBuffer) -> Bool {
        let size = encodedSize
        guard payload.readerIndex >= size else { return false }
        let written: Void? = payload.modifyIfUniquelyOwned { buffer in
            let end = buffer.writerIndex
            buffer.moveReaderIndex(to: buffer.readerIndex - size)
            buffer.moveWriterIndex(to: buffer.readerIndex)
            write(into: &buffer)
            buffer.moveWriterIndex(to: end)
        }
        return written != nil
    }

    /// The whole frame in one new buffer of its exact size: this header, then `payload` as it goes
    /// on the wire (already masked when the header has a key).
    @inlinable
    public func encoded(payload: ByteBuffer) -> ByteBuffer {
        var frame = ByteBuffer()
        frame.reserveCapacity(encodedSize + payload.readableBytes)
        write(into: &frame, payload: payload)
        return frame
    }

    /// Writes this header, then `payload` as it goes on the wire, at the end of `buffer`.
    @inlinable
    public func write(into buffer: inout ByteBuffer, payload: ByteBuffer) {
        write(into: &buffer)
        buffer.writeImmutableBuffer(payload)
    }

    /// Writes the header in wire form, always with the shortest payload-length form.
    @inlinable
    public func write(into buffer: inout ByteBuffer) {
        let first = (fin ? 0x80 : 0) | (rsv & 0x7) << 4 | opcode.rawValue
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        if payloadLength < 126 {
            buffer.writeMultipleIntegers(first, maskBit | UInt8(payloadLength))
        } else if payloadLength <= 0xFFFF {
            buffer.writeMultipleIntegers(first, maskBit | 126, UInt16(payloadLength))
        } else {
            buffer.writeMultipleIntegers(first, maskBit | 127, UInt64(payloadLength))
        }
        if let key = maskingKey {
            buffer.writeMultipleIntegers(key.bytes.0, key.bytes.1, key.bytes.2, key.bytes.3)
        }
    }
}

/// A whole frame: its header and its payload, unmasked.
public struct Frame: Sendable, Hashable {
    /// The frame's header. When it carries a ``FrameHeader/maskingKey``, ``payload`` is still the
    /// unmasked application data; the key says how it is (or was) masked on the wire.
    public var header: FrameHeader
    /// The payload bytes, unmasked.
    public var payload: ByteBuffer

    /// Creates a frame; the header's payload length is taken from `payload`.
    @inlinable
    public init(fin: Bool = true, rsv: UInt8 = 0, opcode: Opcode, maskingKey: MaskingKey? = nil, payload: ByteBuffer) {
        self.header = FrameHeader(fin: fin, rsv: rsv, opcode: opcode, maskingKey: maskingKey,
                                  payloadLength: payload.readableBytes)
        self.payload = payload
    }

    /// Whether this is the final frame of its message.
    @inlinable public var fin: Bool { header.fin }
    /// The frame's opcode.
    @inlinable public var opcode: Opcode { header.opcode }
    /// The reserved bits (see ``FrameHeader/rsv``).
    @inlinable public var rsv: UInt8 { header.rsv }
}
