import CompressNIO
import DuplexCore
import NIOCore

/// The permessage-deflate codec of one connection (RFC 7692 §7.2): raw deflate streams from zlib,
/// one compressing outbound messages and one inflating inbound ones.
///
/// Both streams are created on first use, so a connection that has not sent or received a
/// compressed message holds no zlib memory. A direction without context takeover needs no state
/// between messages: with ``PerMessageDeflate/SharedStreams`` its stream is borrowed for the message
/// and given back, so the connections of one thread share a few streams instead of holding one each.
final class DeflateCodec: MessageCompression {
    /// The empty stored block a sync flush ends with; stripped when sending, restored when receiving.
    private static let syncFlushTail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
    /// The most a message buffer is grown by at once while inflating near the size limit.
    static let inflateChunk = 16 * 1024

    private let compressorSettings: PerMessageDeflate.SharedStreams.CompressorSettings
    private let peerWindowBits: Int
    private let localNoContextTakeover: Bool
    private let peerNoContextTakeover: Bool
    private let minimumSize: Int
    private let shared: PerMessageDeflate.SharedStreams?
    /// The compressor this connection holds between messages: always with context takeover,
    /// and without it when no shared streams were given.
    private var compressor: ZlibCompressor?
    /// The decompressor this connection holds: between messages with the peer's context takeover,
    /// and during a message (across its fragments) otherwise.
    private var decompressor: ZlibDecompressor?
    private let allocator = ByteBufferAllocator()
    /// The tail fed to the decompressor at the end of each message; owned here so it is not reallocated.
    private var tail = ByteBuffer(bytes: syncFlushTail)

    init(
        localWindowBits: Int,
        peerWindowBits: Int,
        localNoContextTakeover: Bool,
        peerNoContextTakeover: Bool,
        compressionLevel: Int,
        memoryLevel: Int,
        minimumSize: Int,
        shared: PerMessageDeflate.SharedStreams?
    ) {
        // zlib refuses raw deflate with 8 bits; its 9-bit window reaches at most 250 bytes back,
        // which a peer inflating with 256 bytes can follow.
        compressorSettings = .init(windowBits: max(localWindowBits, 9), level: compressionLevel, memoryLevel: memoryLevel)
        self.peerWindowBits = peerWindowBits
        self.localNoContextTakeover = localNoContextTakeover
        self.peerNoContextTakeover = peerNoContextTakeover
        self.minimumSize = minimumSize
        self.shared = shared
    }

    /// Whether this connection holds zlib streams now (for tests and memory accounting).
    var holdsStreams: (compressor: Bool, decompressor: Bool) { (compressor != nil, decompressor != nil) }

    // MARK: Outbound

    func compress(_ payload: ByteBuffer) throws(ProtocolError) -> ByteBuffer? {
        guard payload.readableBytes >= minimumSize else { return nil }
        // RFC 7692 §7.2.3.6: an empty message is one empty stored block, `00`, which is also what
        // zlib's sync flush yields for no input once the tail is stripped; it leaves the window unchanged.
        guard payload.readableBytes > 0 else { return ByteBuffer(bytes: [0x00]) }

        let compressor = try takeCompressor()
        var input = payload
        var output = allocator.buffer(capacity: compressor.maxSize(from: payload))
        do {
            // zlib has finished a flush when it returns with output space left (zlib.h, deflate()).
            while true {
                try compressor.deflate(from: &input, to: &output, flush: .sync)
                if input.readableBytes == 0, output.writableBytes > 0 { break }
                output.reserveCapacity(minimumWritableBytes: max(output.capacity / 2, 64))
            }
            if localNoContextTakeover { try compressor.reset() }
        } catch {
            self.compressor = nil  // its state is unknown: never use it again
            throw .extensionFailure("deflate failed: \(error)")
        }
        if localNoContextTakeover, let shared {
            shared.give(compressor, settings: compressorSettings)
        } else {
            self.compressor = compressor
        }
        let tailStart = output.writerIndex - Self.syncFlushTail.count
        guard tailStart >= output.readerIndex, output.getBytes(at: tailStart, length: Self.syncFlushTail.count) == Self.syncFlushTail else {
            throw .extensionFailure("deflate output lacks the sync flush tail")
        }
        output.moveWriterIndex(to: tailStart)  // RFC 7692 §7.2.1

        // Without context takeover the peer's window does not matter, so a message that did not
        // shrink can go as it is. With it, the peer must see every byte the compressor saw.
        if localNoContextTakeover, output.readableBytes >= payload.readableBytes { return nil }
        return output
    }

    private func takeCompressor() throws(ProtocolError) -> ZlibCompressor {
        if let compressor { return compressor }
        do {
            if localNoContextTakeover, let shared { return try shared.takeCompressor(compressorSettings) }
            return try PerMessageDeflate.SharedStreams.makeCompressor(compressorSettings)
        } catch {
            throw .extensionFailure("zlib deflate unavailable: \(error)")
        }
    }

    // MARK: Inbound

    func decompress(_ piece: ByteBuffer, isFinal: Bool, into output: inout ByteBuffer, limit: Int) throws(ProtocolError) {
        if piece.readableBytes > 0 {
            var input = piece
            try inflate(&input, into: &output, limit: limit)
        }
        guard isFinal else { return }
        tail.moveReaderIndex(to: 0)
        try inflate(&tail, into: &output, limit: limit)  // RFC 7692 §7.2.2
        if peerNoContextTakeover, let decompressor {
            try resetDecompressor()
            if let shared {
                shared.give(decompressor, windowBits: peerWindowBits)
                self.decompressor = nil
            }
        }
    }

    private func currentDecompressor() throws(ProtocolError) -> ZlibDecompressor {
        if let decompressor { return decompressor }
        do {
            let made =
                if peerNoContextTakeover, let shared { try shared.takeDecompressor(windowBits: peerWindowBits) }
                else { try PerMessageDeflate.SharedStreams.makeDecompressor(windowBits: peerWindowBits) }
            decompressor = made
            return made
        } catch {
            throw .extensionFailure("zlib inflate unavailable: \(error)")
        }
    }

    /// Inflates all of `input` into `output`, never letting `output.readableBytes` pass `limit`
    /// by more than one byte: zlib only ever gets as much output space as is left under the limit,
    /// plus the one byte that shows the message is too large.
    private func inflate(_ input: inout ByteBuffer, into output: inout ByteBuffer, limit: Int) throws(ProtocolError) {
        while true {
            let room = limit - output.readableBytes
            guard room >= 0 else { throw .messageTooLarge(limit: limit) }
            let allowed = min(room, Int.max - 1) + 1  // what zlib may write: one byte past shows the overflow
            if output.writableBytes == 0 {
                // Double the buffer (a small message gets a small first guess), but never ask past the limit.
                let guess = output.capacity == 0 ? min(max(input.readableBytes * 4, 256), Self.inflateChunk) : output.capacity
                output.reserveCapacity(minimumWritableBytes: min(guess, allowed))
            }
            let drained: Bool
            if output.writableBytes <= allowed {
                drained = try inflateStep(&input, into: &output, room: limit, limit: limit)
            } else {
                // ByteBuffer rounds capacities to powers of two, so near the limit its free space can
                // exceed what is left; inflate into a bounded chunk instead. The chunk's capacity is
                // rounded up as well: skip to where exactly `size` bytes of it are left (the skipped
                // bytes are never read), or zlib could inflate past the limit and, for instance, report
                // corrupt data that lies beyond it instead of the message being too large.
                let size = min(allowed, Self.inflateChunk)
                var chunk = allocator.buffer(capacity: size)
                chunk.moveWriterIndex(to: chunk.capacity - size)
                chunk.moveReaderIndex(to: chunk.writerIndex)
                drained = try inflateStep(&input, into: &chunk, room: room, limit: limit)
                guard chunk.readableBytes <= room else { throw .messageTooLarge(limit: limit) }
                output.writeBuffer(&chunk)
            }
            if output.readableBytes > limit { throw .messageTooLarge(limit: limit) }
            if drained { return }
        }
    }

    /// Runs zlib's inflate once.
    /// - Parameters:
    ///   - room: the most `output` may hold; only used to tell which error comes first.
    ///   - limit: the message's size limit, as reported when the message is too large. (`output` may
    ///     be a chunk of the message, whose room is less than the limit.)
    /// - Returns: whether `input` can give no more output for now (it is consumed and nothing is
    ///   pending), as opposed to the output space running out.
    private func inflateStep(
        _ input: inout ByteBuffer, into output: inout ByteBuffer, room: Int, limit: Int
    ) throws(ProtocolError) -> Bool {
        let decompressor = try currentDecompressor()
        do {
            try decompressor.inflate(from: &input, to: &output)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            return false  // output full; zlib may hold more
        } catch let error as CompressNIOError where error == .inputBufferOverflow {
            return true  // no progress possible without more input
        } catch {
            // zlib goes on past a full output buffer to the next block header, so the call that
            // fills the last byte allowed can also find what follows corrupt: the message was too
            // large first. (The output holds what zlib wrote before failing.)
            if output.readableBytes > room { throw .messageTooLarge(limit: limit) }
            throw .extensionFailure("corrupt compressed data (\(error))")
        }
        // Success with input left means the stream ended: the sender closed it with a BFINAL block
        // (RFC 7692 §7.2.3.4). What follows starts a new stream.
        if input.readableBytes > 0 {
            try resetDecompressor()
            return false
        }
        return true
    }

    private func resetDecompressor() throws(ProtocolError) {
        do {
            try decompressor?.reset()
        } catch {
            decompressor = nil
            throw .extensionFailure("inflate reset failed: \(error)")
        }
    }
}
