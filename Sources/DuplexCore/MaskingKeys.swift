#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A client's supply of masking keys, drawn from the operating system's cryptographically strong
/// generator (RFC 6455 §10.3) a batch at a time: one `getentropy` call (one `getrandom` system call
/// on Linux) gives 64 keys, where ``MaskingKey/random()`` and `SystemRandomNumberGenerator` make a
/// system call for every 8 bytes. The keys stay unpredictable; they are only fetched in advance.
/// Empty (and allocating nothing) until the first key is asked for, so a server pays nothing.
struct MaskingKeys {
    /// `getentropy` gives at most 256 bytes a call: 64 keys.
    private static let batch = 64
    private var keys: [UInt32] = []
    private var used = 0

    /// The next key.
    mutating func next() -> MaskingKey {
        if used == keys.count { refill() }
        used += 1
        return MaskingKey(randomBits: keys[used - 1])
    }

    private mutating func refill() {
        if keys.isEmpty { keys = [UInt32](repeating: 0, count: Self.batch) }
        let status = keys.withUnsafeMutableBytes { getentropy($0.baseAddress, $0.count) }
        if status != 0 {
            // No getentropy (a kernel before 3.17): the standard library's generator, a word at a time.
            var generator = SystemRandomNumberGenerator()
            for index in keys.indices { keys[index] = generator.next() }
        }
        used = 0
    }
}
