public import NIOCore

/// Decodes frames from a stream of bytes, incrementally and without copying payloads.
///
/// Feed it the bytes received so far in a buffer it may mutate: it consumes a frame from the buffer once
/// the whole frame is there, and unmasks payload bytes in place as they arrive. A frame of 4 KiB or more
/// that is not whole in the buffer is instead moved out of it as it arrives, copied and unmasked in one
/// pass into a buffer of its own (so the caller's read buffers are released, and are not copied again
/// to gather it). While a frame is still arriving it reports the newly arrived payload bytes
/// (``Output/partial(_:_:offset:)``) so that a caller can validate a text as it streams in.
///
/// Every rule of RFC 6455 §5.2 that one frame can break is checked here: reserved opcodes, reserved bits,
/// masking by role, minimal length encoding, the 2^63 limit, control frames (FIN set, at most 125 bytes),
/// and the configured maximum frame size.
public struct FrameDecoder: Sendable {
    /// What ``next(from:)`` found.
    public enum Output: Sendable, Hashable {
        /// A whole frame, consumed from the buffer. Its payload is unmasked.
        case frame(Frame)
        /// A frame whose payload has not fully arrived: `bytes` are the payload bytes that arrived since
        /// the last report (unmasked), beginning at payload offset `offset`. The first report of a
        /// frame comes as soon as its header is complete, possibly with no bytes.
        case partial(FrameHeader, ByteBuffer, offset: Int)
    }

    /// Whether frames must be masked: true on a server (clients mask), false on a client.
    public let expectsMaskedFrames: Bool
    /// The largest payload accepted in one frame; larger frames throw ``ProtocolError/frameTooLarge(length:limit:)``.
    public var maxFrameSize: Int
    /// The reserved bits a negotiated extension gives a meaning to (RSV1 = 0b100). Others throw.
    public var allowedReservedBits: UInt8

    @usableFromInline var pending: FrameHeader?
    @usableFromInline var reported = 0
    /// The payload so far of a frame that did not arrive in one piece, unmasked: its bytes are moved
    /// here from each read as they arrive, in one pass that copies and unmasks them, so that the
    /// read buffers are released and a large frame is neither regathered nor unmasked a second time.
    @usableFromInline var gathered: ByteBuffer?

    /// Frames at least this long that are not complete in the buffer are gathered in ``gathered``;
    /// shorter ones wait in the caller's buffer (an allocation of their own would cost more).
    @usableFromInline static let gatherThreshold = 4096
    /// The most a gathered frame reserves before its bytes arrive; beyond it, the buffer grows with
    /// what arrives, so that a peer that announces a large frame and sends little holds little.
    @usableFromInline static let gatherReservation = 1 << 20

    /// Creates a decoder.
    /// - Parameters:
    ///   - expectsMaskedFrames: `true` for a server, `false` for a client.
    ///   - maxFrameSize: the largest payload of one frame. Default 16 MiB.
    ///   - allowedReservedBits: the RSV bits an extension has claimed. Default none.
    public init(expectsMaskedFrames: Bool, maxFrameSize: Int = 16 << 20, allowedReservedBits: UInt8 = 0) {
        self.expectsMaskedFrames = expectsMaskedFrames
        self.maxFrameSize = maxFrameSize
        self.allowedReservedBits = allowedReservedBits
    }

    /// Whether the decoder is part-way through a frame.
    public var isInsideFrame: Bool { pending != nil }

    /// Decodes the next frame, or reports progress on a partial one.
    ///
    /// - Returns: `nil` when more bytes are needed and nothing new can be reported.
    /// - Throws: ``ProtocolError`` for a frame that breaks the protocol. The decoder must not be used
    ///   after it throws.
    public mutating func next(from buffer: inout ByteBuffer) throws(ProtocolError) -> Output? {
        let header: FrameHeader
        var isNewHeader = false
        if let pending {
            header = pending
        } else {
            guard let parsed = try parseHeader(from: &buffer) else { return nil }
            header = parsed
            reported = 0
            isNewHeader = true
        }
        let length = header.payloadLength
        if gathered != nil { return gather(header, from: &buffer) }
        let available = min(buffer.readableBytes, length)
        if isNewHeader, available < length, length >= Self.gatherThreshold {
            // Room in front for a header: an echo or a relay of the payload goes out as one buffer.
            gathered = ByteBuffer.empty(capacity: min(length, Self.gatherReservation), headroom: FrameHeader.maxEncodedSize)
            pending = header
            return gather(header, from: &buffer) ?? .partial(header, ByteBuffer(), offset: 0)
        }
        if available == length {
            pending = nil
            guard let key = header.maskingKey, length > reported else {
                return .frame(Frame(header: header, payload: buffer.readSlice(length: length)!))
            }
            // When nothing else holds the buffer's storage (a frame under the gathering threshold
            // that filled several reads, appended here by the caller), unmask it in place and slice
            // it: no copy. Otherwise (the read
            // buffer is still held by the channel, or by earlier frames' payloads) slice first,
            // and the slice copies its own payload once, unmasking on the way, rather than
            // unmasking the buffer and copying all that is left of it once per frame.
            let start = buffer.readerIndex + reported
            let unmasked: Void? = buffer.modifyIfUniquelyOwned { buffer in
                buffer.applyMask(key, at: start, length: length - reported, offset: reported)
            }
            var payload = buffer.readSlice(length: length)!
            if unmasked == nil {
                payload.applyMask(key, at: payload.readerIndex + reported, length: length - reported, offset: reported,
                                  headroom: FrameHeader.maxEncodedSize)
            }
            return .frame(Frame(header: header, payload: payload))
        }
        if let key = header.maskingKey, available > reported {
            // A frame still arriving (shorter than the gathering threshold: longer ones are
            // gathered above): the caller appends the next reads to this buffer, so leave room for
            // the rest of the frame.
            buffer.applyMask(key, at: buffer.readerIndex + reported, length: available - reported, offset: reported,
                             minimumWritableBytes: length - available)
        }
        pending = header
        guard isNewHeader || available > reported else { return nil }
        let offset = reported
        let bytes = buffer.getSlice(at: buffer.readerIndex + offset, length: available - offset)!
        reported = available
        return .partial(header, bytes, offset: offset)
    }

    /// Moves the bytes of the frame being gathered from `buffer` to ``gathered``, unmasking them;
    /// returns the frame once it is whole, or the bytes that arrived.
    @inlinable
    mutating func gather(_ header: FrameHeader, from buffer: inout ByteBuffer) -> Output? {
        let length = header.payloadLength
        let count = min(buffer.readableBytes, length - reported)
        guard count > 0 else { return nil }
        gathered!.writeMasked(from: &buffer, count: count, key: header.maskingKey, offset: reported)
        let offset = reported
        reported += count
        if reported == length {
            let payload = gathered!
            gathered = nil
            pending = nil
            return .frame(Frame(header: header, payload: payload))
        }
        return .partial(header, gathered!.getSlice(at: gathered!.readerIndex + offset, length: count)!, offset: offset)
    }

    @inlinable
    mutating func parseHeader(from buffer: inout ByteBuffer) throws(ProtocolError) -> FrameHeader? {
        guard let (first, second) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8).self) else {
            return nil
        }
        guard let opcode = Opcode(rawValue: first & 0x0F) else { throw .reservedOpcode(first & 0x0F) }
        let fin = first & 0x80 != 0
        let rsv = (first >> 4) & 0x7
        if opcode.isControl {
            if rsv != 0 { throw .reservedBitsSet(rsv) }
            if !fin { throw .fragmentedControlFrame }
        } else if rsv & ~allowedReservedBits != 0 {
            throw .reservedBitsSet(rsv)
        }
        let masked = second & 0x80 != 0
        if masked != expectsMaskedFrames { throw masked ? .maskedServerFrame : .unmaskedClientFrame }
        let length7 = Int(second & 0x7F)
        if opcode.isControl && length7 > 125 { throw .controlFrameTooLong(length7) }

        let lengthSize = length7 == 126 ? 2 : (length7 == 127 ? 8 : 0)
        let headerSize = 2 + lengthSize + (masked ? 4 : 0)
        guard buffer.readableBytes >= headerSize else { return nil }
        var cursor = buffer.readerIndex + 2
        let length: Int
        switch length7 {
        case 126:
            let value = Int(buffer.getInteger(at: cursor, as: UInt16.self)!)
            if value < 126 { throw .nonMinimalLength }
            length = value
        case 127:
            let value = buffer.getInteger(at: cursor, as: UInt64.self)!
            if value & (1 << 63) != 0 { throw .lengthOverflow }
            if value <= 0xFFFF { throw .nonMinimalLength }
            guard value <= UInt64(maxFrameSize) else { throw .frameTooLarge(length: Int(value), limit: maxFrameSize) }
            length = Int(value)
        default:
            length = length7
        }
        if length > maxFrameSize { throw .frameTooLarge(length: length, limit: maxFrameSize) }
        cursor += lengthSize
        var key: MaskingKey?
        if masked {
            let (b0, b1, b2, b3) = buffer.getMultipleIntegers(at: cursor, as: (UInt8, UInt8, UInt8, UInt8).self)!
            key = MaskingKey(b0, b1, b2, b3)
        }
        buffer.moveReaderIndex(forwardBy: headerSize)
        return FrameHeader(fin: fin, rsv: rsv, opcode: opcode, maskingKey: key, payloadLength: length)
    }
}

extension Frame {
    /// Creates a frame from a decoded header and its (unmasked) payload.
    @inlinable
    init(header: FrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }
}
