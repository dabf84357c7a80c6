import Crypto

/// A client's supply of masking keys, drawn from a cryptographically strong generator (RFC 6455
/// §10.3) a batch at a time: swift-crypto's random key generation gives 64 keys in one call, where
/// ``MaskingKey/random()`` makes a system call for every frame. The keys stay unpredictable; they
/// are only fetched in advance. Empty (and allocating nothing) until the first key is asked for, so
/// a server pays nothing.
struct MaskingKeys {
    private static let batch = 64
    private var keys: [UInt32] = []

    /// The next key.
    mutating func next() -> MaskingKey {
        if keys.isEmpty { refill() }
        return MaskingKey(randomBits: keys.removeLast())
    }

    private mutating func refill() {
        // SymmetricKey(size:) fills its bytes from the system's CSPRNG (BoringSSL's RAND_bytes on Linux).
        let random = SymmetricKey(size: SymmetricKeySize(bitCount: Self.batch * 32))
        random.withUnsafeBytes { bytes in
            for index in 0..<Self.batch {
                keys.append(bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
            }
        }
    }
}
