import DuplexCore
import NIOCore

/// The inputs the benchmarks work on, made once.
enum Fixtures {
    /// Frames per batch in the per-frame benchmarks (their scaling factor).
    static let framesPerBatch = 1000
    static let key = MaskingKey(0x37, 0xFA, 0x21, 0x3D)

    /// `count` masked binary frames of `size` bytes each, back to back, as a client sends them.
    static func maskedFrames(count: Int, size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for _ in 0..<count {
            var payload = ByteBuffer(repeating: 0x78, count: size)
            payload.applyMask(key)
            FrameHeader(opcode: .binary, maskingKey: key, payloadLength: size).write(into: &buffer)
            buffer.writeImmutableBuffer(payload)
        }
        return buffer
    }

    /// `size` bytes of ASCII text shaped like a JSON event stream.
    static func asciiText(size: Int) -> ByteBuffer {
        let sample = #"{"type":"event","channel":"prices","seq":12345,"symbol":"ACME","bid":101.25,"ask":101.5},"#
        var buffer = ByteBuffer()
        while buffer.readableBytes < size { buffer.writeString(sample) }
        return buffer.getSlice(at: 0, length: size)!
    }

    /// About `size` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte sequences.
    static func mixedText(size: Int) -> ByteBuffer {
        let sample = "Grüße, Zürich! Привет, мир. 你好，世界。 🎉🚀 "
        var buffer = ByteBuffer()
        while buffer.readableBytes + sample.utf8.count <= size { buffer.writeString(sample) }
        return buffer
    }
}
