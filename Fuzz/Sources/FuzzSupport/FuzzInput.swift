/// The bytes libFuzzer hands a target, read from the front: a few bytes choose the configuration,
/// the rest is the input proper.
public struct FuzzInput {
    /// The bytes not read yet.
    public private(set) var rest: ArraySlice<UInt8>

    /// Wraps what `LLVMFuzzerTestOneInput` received.
    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        rest = size > 0 && data != nil ? ArraySlice(UnsafeBufferPointer(start: data, count: size)) : []
    }

    /// Wraps bytes (for replaying an input by hand).
    public init(_ bytes: [UInt8]) {
        rest = bytes[...]
    }

    /// The next byte, or 0 once the input is exhausted.
    public mutating func byte() -> UInt8 {
        rest.popFirst() ?? 0
    }

    /// The next two bytes as a big-endian integer (0 for missing bytes).
    public mutating func uint16() -> Int {
        Int(byte()) << 8 | Int(byte())
    }

    /// Up to `count` bytes.
    public mutating func bytes(_ count: Int) -> ArraySlice<UInt8> {
        let taken = rest.prefix(count)
        rest = rest.dropFirst(taken.count)
        return taken
    }

    /// Everything not read yet.
    public mutating func remaining() -> ArraySlice<UInt8> {
        defer { rest = [] }
        return rest
    }
}

/// A small deterministic generator (xorshift64), so that an input always splits the same way.
public struct Splitter {
    private var state: UInt64

    /// Seeds the generator; a zero seed is replaced, as xorshift would stay at zero.
    public init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    /// The next pseudo-random value.
    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    /// A value in `1...max`.
    public mutating func size(max: Int) -> Int {
        Int(next() % UInt64(max)) + 1
    }

    /// Splits `bytes` into consecutive pieces of 1 to `max` bytes.
    public mutating func pieces(of bytes: ArraySlice<UInt8>, max: Int) -> [ArraySlice<UInt8>] {
        var pieces: [ArraySlice<UInt8>] = []
        var rest = bytes
        while !rest.isEmpty {
            let piece = rest.prefix(size(max: max))
            pieces.append(piece)
            rest = rest.dropFirst(piece.count)
        }
        return pieces
    }
}
