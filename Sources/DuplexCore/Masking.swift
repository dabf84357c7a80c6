public import NIOCore

extension MaskingKey {
    /// XORs this key over `bytes` in place, sixteen bytes at a time, as if `bytes` began at payload
    /// offset `offset` (so a payload can be unmasked in several pieces as it arrives).
    @inlinable
    public func apply(to bytes: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        guard let base = bytes.baseAddress else { return }
        apply(from: UnsafeRawPointer(base), to: base, count: bytes.count, offset: offset)
    }

    /// Writes `count` bytes from `source`, XORed with this key from key phase `offset`, to
    /// `destination`: masking and copying in one pass. `source` and `destination` may be the same
    /// address (masking in place), but must not otherwise overlap.
    @inlinable
    public func apply(from source: UnsafeRawPointer, to base: UnsafeMutableRawPointer, count: Int, offset: Int = 0) {
        guard count > 0 else { return }
        // The key rotated so that its first byte is the one for `offset`.
        let k0 = self[offset], k1 = self[offset + 1], k2 = self[offset + 2], k3 = self[offset + 3]
        let key32 = UInt32(k0) | UInt32(k1) << 8 | UInt32(k2) << 16 | UInt32(k3) << 24
        let word = UInt64(littleEndian: UInt64(key32) | UInt64(key32) << 32)
        // 128 bytes a round in 16-byte vectors (SSE2 on x86-64, NEON on arm64), then 16 and 8 at a
        // time. Wrapping arithmetic: `index + n <= count` cannot overflow for a real buffer, and
        // the overflow checks would cost the loop a branch per round.
        let vector = SIMD2<UInt64>(repeating: word)
        var index = 0
        while index &+ 128 <= count {
            var lane = 0
            while lane < 128 {
                let bytes = source.loadUnaligned(fromByteOffset: index &+ lane, as: SIMD2<UInt64>.self)
                base.storeBytes(of: bytes ^ vector, toByteOffset: index &+ lane, as: SIMD2<UInt64>.self)
                lane &+= 16
            }
            index &+= 128
        }
        while index &+ 16 <= count {
            let bytes = source.loadUnaligned(fromByteOffset: index, as: SIMD2<UInt64>.self)
            base.storeBytes(of: bytes ^ vector, toByteOffset: index, as: SIMD2<UInt64>.self)
            index &+= 16
        }
        if index &+ 8 <= count {
            let bytes = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: bytes ^ word, toByteOffset: index, as: UInt64.self)
            index &+= 8
        }
        // index is a multiple of 8, so the key phase is unchanged for the tail.
        var phase = 0
        while index < count {
            let keyByte: UInt8 = switch phase { case 0: k0; case 1: k1; case 2: k2; default: k3 }
            base.storeBytes(of: source.load(fromByteOffset: index, as: UInt8.self) ^ keyByte, toByteOffset: index, as: UInt8.self)
            index += 1
            phase = (phase + 1) & 3
        }
    }
}

extension ByteBuffer {
    /// XORs `key` over the readable bytes (masking and unmasking are the same operation),
    /// starting at key phase `offset`. See ``applyMask(_:at:length:offset:minimumWritableBytes:headroom:)``
    /// for when it copies.
    @inlinable
    public mutating func applyMask(_ key: MaskingKey, offset: Int = 0, headroom: Int = 0) {
        applyMask(key, at: readerIndex, length: readableBytes, offset: offset, headroom: headroom)
    }

    /// XORs `key` over `length` bytes at `index`, starting at key phase `offset`.
    ///
    /// In place when this buffer is the only one using its storage. When the storage is shared (a
    /// frame sliced from a read buffer that is still held, or a message the application keeps),
    /// the readable bytes are copied to new storage with the range masked on the way, in one pass,
    /// instead of a copy-on-write followed by a second pass to mask the copy.
    /// - Parameters:
    ///   - minimumWritableBytes: room to leave after the bytes when they have to be copied.
    ///   - headroom: room to leave before the bytes when they have to be copied (for a frame header,
    ///     see ``FrameHeader/prepend(to:)``).
    @inlinable
    public mutating func applyMask(_ key: MaskingKey, at index: Int, length: Int, offset: Int = 0,
                                   minimumWritableBytes: Int = 0, headroom: Int = 0) {
        precondition(index >= readerIndex && index + length <= writerIndex, "mask range out of bounds")
        let start = index - readerIndex
        let count = readableBytes
        func maskInPlace(_ buffer: inout ByteBuffer) {
            buffer.withUnsafeMutableReadableBytes { bytes in
                key.apply(to: UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + length]), offset: offset)
            }
        }
        // Small buffers: copy-on-write (if shared) and a second pass cost less than a fresh buffer.
        if count < 1024 && minimumWritableBytes == 0 { return maskInPlace(&self) }
        if modifyIfUniquelyOwned(maskInPlace) != nil { return }
        var copy = ByteBuffer.empty(capacity: count + minimumWritableBytes, headroom: headroom)
        withUnsafeReadableBytes { source in
            _ = copy.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { destination in
                guard let from = source.baseAddress, let to = destination.baseAddress else { return 0 }
                to.copyMemory(from: from, byteCount: start)
                key.apply(from: from + start, to: to + start, count: length, offset: offset)
                (to + start + length).copyMemory(from: from + start + length, byteCount: count - start - length)
                return count
            }
        }
        self = copy
    }

    /// An empty buffer with room for `capacity` bytes after `headroom` bytes kept free in front of
    /// them (for a frame header, see ``FrameHeader/prepend(to:)``).
    @usableFromInline
    static func empty(capacity: Int, headroom: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: headroom + capacity)
        buffer.moveWriterIndex(to: headroom)
        buffer.moveReaderIndex(to: headroom)
        return buffer
    }

    /// Moves `count` bytes from the front of `source` to the end of this buffer, XORed with `key`
    /// from key phase `offset` (copied as they are when `key` is nil): gathering and unmasking in
    /// one pass.
    @inlinable
    public mutating func writeMasked(from source: inout ByteBuffer, count: Int, key: MaskingKey?, offset: Int = 0) {
        precondition(count <= source.readableBytes, "more bytes than the source holds")
        source.withUnsafeReadableBytes { from in
            _ = writeWithUnsafeMutableBytes(minimumWritableBytes: count) { to in
                guard let from = from.baseAddress, let to = to.baseAddress else { return 0 }
                if let key {
                    key.apply(from: from, to: to, count: count, offset: offset)
                } else {
                    to.copyMemory(from: from, byteCount: count)
                }
                return count
            }
        }
        source.moveReaderIndex(forwardBy: count)
    }
}
