/// A violation of RFC 6455 by the peer. Each maps to the close code the connection is failed with.
public enum ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A frame used a reserved opcode (0x3-0x7, 0xB-0xF).
    case reservedOpcode(UInt8)
    /// A frame set a reserved bit (RSV1-3) that no negotiated extension gives a meaning.
    case reservedBitsSet(UInt8)
    /// A client sent an unmasked frame; clients must mask every frame.
    case unmaskedClientFrame
    /// A server sent a masked frame; servers must not mask.
    case maskedServerFrame
    /// A payload length used a longer form than needed.
    case nonMinimalLength
    /// A 64-bit payload length had its most significant bit set.
    case lengthOverflow
    /// A control frame had FIN clear.
    case fragmentedControlFrame
    /// A control frame carried more than 125 bytes.
    case controlFrameTooLong(Int)
    /// A continuation frame arrived with no message in progress.
    case unexpectedContinuation
    /// A text or binary frame arrived while a fragmented message was in progress.
    case expectedContinuation
    /// A text message, or a close reason, was not valid UTF-8.
    case invalidUTF8
    /// A close frame had a one-byte payload.
    case closePayloadTooShort
    /// A close frame carried a code that may not appear on the wire.
    case invalidCloseCode(UInt16)
    /// A frame was longer than the configured maximum.
    case frameTooLarge(length: Int, limit: Int)
    /// A message was longer than the configured maximum.
    case messageTooLarge(limit: Int)
    /// A negotiated extension could not process a message (for example, corrupt compressed data).
    case extensionFailure(String)

    /// The close code the connection is failed with.
    public var closeCode: CloseCode {
        switch self {
        case .invalidUTF8: .invalidPayload
        case .frameTooLarge, .messageTooLarge: .messageTooBig
        default: .protocolError
        }
    }

    /// A short, human-readable reason, also sent as the close reason (always under 123 bytes).
    public var description: String {
        switch self {
        case .reservedOpcode(let opcode): "reserved opcode \(opcode)"
        case .reservedBitsSet(let bits): "reserved bits set (rsv=\(bits))"
        case .unmaskedClientFrame: "client frame not masked"
        case .maskedServerFrame: "server frame masked"
        case .nonMinimalLength: "payload length not in minimal form"
        case .lengthOverflow: "payload length exceeds 2^63-1"
        case .fragmentedControlFrame: "fragmented control frame"
        case .controlFrameTooLong(let length): "control frame of \(length) bytes (max 125)"
        case .unexpectedContinuation: "continuation frame without a message in progress"
        case .expectedContinuation: "new message before the fragmented one finished"
        case .invalidUTF8: "invalid UTF-8 in text"
        case .closePayloadTooShort: "close frame payload of 1 byte"
        case .invalidCloseCode(let code): "invalid close code \(code)"
        case .frameTooLarge(let length, let limit): "frame of \(length) bytes exceeds limit \(limit)"
        case .messageTooLarge(let limit): "message exceeds limit of \(limit) bytes"
        case .extensionFailure(let reason): "extension failure: \(reason.prefix(80))"
        }
    }
}
