public import NIOCore

extension MaskingKey {
    /// XORs this key over `bytes` in place, eight bytes at a time, as if `bytes` began at payload
    /// offset `offset` (so a payload can be unmasked in several pieces as it arrives).
    @inlinable
    public func apply(to bytes: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return }
        // The key rotated so that its first byte is the one for `offset`.
        let k0 = self[offset], k1 = self[offset + 1], k2 = self[offset + 2], k3 = self[offset + 3]
        let key32 = UInt32(k0) | UInt32(k1) << 8 | UInt32(k2) << 16 | UInt32(k3) << 24
        let word = UInt64(littleEndian: UInt64(key32) | UInt64(key32) << 32)
        var index = 0
        while index + 32 <= count {
            let a = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            base.storeBytes(of: a ^ word, toByteOffset: index, as: UInt64.self)
            base.storeBytes(of: b ^ word, toByteOffset: index + 8, as: UInt64.self)
            base.storeBytes(of: c ^ word, toByteOffset: index + 16, as: UInt64.self)
            base.storeBytes(of: d ^ word, toByteOffset: index + 24, as: UInt64.self)
            index += 32
        }
        while index + 8 <= count {
            let a = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: a ^ word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        // index is a multiple of 8, so the key phase is unchanged for the tail.
        var phase = 0
        while index < count {
            let keyByte: UInt8 = switch phase { case 0: k0; case 1: k1; case 2: k2; default: k3 }
            base.storeBytes(of: base.load(fromByteOffset: index, as: UInt8.self) ^ keyByte, toByteOffset: index, as: UInt8.self)
            index += 1
            phase = (phase + 1) & 3
        }
    }
}

extension ByteBuffer {
    /// XORs `key` over the readable bytes in place (masking and unmasking are the same operation),
    /// starting at key phase `offset`.
    @inlinable
    public mutating func applyMask(_ key: MaskingKey, offset: Int = 0) {
        withUnsafeMutableReadableBytes { key.apply(to: $0, offset: offset) }
    }

    /// XORs `key` over `length` bytes at `index` in place, starting at key phase `offset`.
    @inlinable
    public mutating func applyMask(_ key: MaskingKey, at index: Int, length: Int, offset: Int = 0) {
        precondition(index >= readerIndex && index + length <= writerIndex, "mask range out of bounds")
        let start = index - readerIndex
        withUnsafeMutableReadableBytes { bytes in
            key.apply(to: UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + length]), offset: offset)
        }
    }
}
