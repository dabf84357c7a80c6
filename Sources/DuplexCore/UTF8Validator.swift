public import NIOCore

/// An incremental UTF-8 validator (Unicode Table 3-7, well-formed byte sequences).
///
/// Feed it a message in as many pieces as it arrives in: a code point may be split across pieces.
/// It reports an invalid sequence at the first byte that makes it invalid, so a connection can be
/// failed with 1007 as soon as the bad byte arrives, not when the message ends. Runs of ASCII are
/// checked eight bytes at a time.
public struct UTF8Validator: Sendable, Hashable {
    // States of the automaton: what the next byte must be.
    @usableFromInline static let accept: UInt8 = 0     // at a code point boundary
    @usableFromInline static let need1: UInt8 = 1      // one more 80-BF
    @usableFromInline static let need2: UInt8 = 2      // two more 80-BF
    @usableFromInline static let need3: UInt8 = 3      // three more 80-BF
    @usableFromInline static let afterE0: UInt8 = 4    // A0-BF, then one more
    @usableFromInline static let afterED: UInt8 = 5    // 80-9F (no surrogates), then one more
    @usableFromInline static let afterF0: UInt8 = 6    // 90-BF, then two more
    @usableFromInline static let afterF4: UInt8 = 7    // 80-8F (at most U+10FFFF), then two more
    @usableFromInline static let reject: UInt8 = 8

    @usableFromInline var state: UInt8 = 0

    /// Creates a validator at the start of a text.
    public init() {}

    /// Whether every byte so far was valid and the text ends on a code point boundary: true at the end
    /// of a well-formed text.
    @inlinable public var isComplete: Bool { state == Self.accept }

    /// Whether an invalid sequence has been seen. Once set, it stays set until ``reset()``.
    @inlinable public var hasFailed: Bool { state == Self.reject }

    /// Starts over, for the next text.
    @inlinable public mutating func reset() { state = Self.accept }

    /// Validates the next piece of the text. Returns `false` as soon as the bytes so far cannot begin a
    /// well-formed text; an incomplete code point at the end of `bytes` is not an error.
    @inlinable
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state != Self.reject else { return false }
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var index = 0
        var state = self.state
        while index < count {
            if state == Self.accept {
                // ASCII fast path: skip whole words whose bytes all have the high bit clear.
                while index + 16 <= count {
                    let a = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    let b = base.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
                    if (a | b) & 0x8080_8080_8080_8080 != 0 { break }
                    index += 16
                }
                while index + 8 <= count {
                    if base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
                    index += 8
                }
                if index == count { break }
            }
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            state = Self.transition(state, byte)
            if state == Self.reject {
                self.state = state
                return false
            }
            index += 1
        }
        self.state = state
        return true
    }

    /// Validates the readable bytes of `buffer` as the next piece of the text.
    @inlinable
    public mutating func validate(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { validate($0) }
    }

    /// Whether `buffer`'s readable bytes are, on their own, a well-formed UTF-8 text.
    @inlinable
    public static func isValid(_ buffer: ByteBuffer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(buffer) && validator.isComplete
    }

    /// Whether `bytes` are, on their own, a well-formed UTF-8 text.
    @inlinable
    public static func isValid(_ bytes: some Sequence<UInt8>) -> Bool {
        var validator = UTF8Validator()
        let ok = bytes.withContiguousStorageIfAvailable { validator.validate(UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { validator.validate($0) }
        return ok && validator.isComplete
    }

    @inlinable
    static func transition(_ state: UInt8, _ byte: UInt8) -> UInt8 {
        switch state {
        case accept:
            switch byte {
            case 0x00...0x7F: return accept
            case 0xC2...0xDF: return need1
            case 0xE0: return afterE0
            case 0xE1...0xEC, 0xEE...0xEF: return need2
            case 0xED: return afterED
            case 0xF0: return afterF0
            case 0xF1...0xF3: return need3
            case 0xF4: return afterF4
            default: return reject
            }
        case need1: return byte & 0xC0 == 0x80 ? accept : reject
        case need2: return byte & 0xC0 == 0x80 ? need1 : reject
        case need3: return byte & 0xC0 == 0x80 ? need2 : reject
        case afterE0: return (0xA0...0xBF).contains(byte) ? need1 : reject
        case afterED: return (0x80...0x9F).contains(byte) ? need1 : reject
        case afterF0: return (0x90...0xBF).contains(byte) ? need2 : reject
        case afterF4: return (0x80...0x8F).contains(byte) ? need2 : reject
        default: return reject
        }
    }
}
