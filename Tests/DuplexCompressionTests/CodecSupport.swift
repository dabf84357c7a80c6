import DuplexCompression
import DuplexCore
import NIOCore

/// A server and a client codec built from the same agreed parameters.
struct CodecPair {
    let server: any MessageCompression
    let client: any MessageCompression

    init(_ parameters: PerMessageDeflate.Parameters = .init(), configuration: PerMessageDeflate.Configuration = .init(minimumSize: 0)) throws {
        server = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true, configuration: configuration)
        client = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: false, configuration: configuration)
    }
}

extension MessageCompression {
    /// Inflates `compressed` as one frame, or as frames of `pieceSize` bytes.
    func inflate(_ compressed: ByteBuffer, pieceSize: Int? = nil, limit: Int = .max) throws(ProtocolError) -> ByteBuffer {
        var output = ByteBuffer()
        var rest = compressed
        let size = pieceSize ?? max(rest.readableBytes, 1)
        repeat {
            let piece = rest.readSlice(length: min(size, rest.readableBytes))!
            try decompress(piece, isFinal: rest.readableBytes == 0, into: &output, limit: limit)
        } while rest.readableBytes > 0
        return output
    }

    /// Compresses `bytes`, which must not fall under the threshold.
    func deflate(_ bytes: [UInt8]) throws -> ByteBuffer {
        guard let compressed = try compress(ByteBuffer(bytes: bytes)) else { throw Uncompressed() }
        return compressed
    }
}

struct Uncompressed: Error {}

/// Deterministic pseudo-random bytes (xorshift), incompressible in practice.
func randomBytes(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// Text-like bytes that compress well.
func repetitiveBytes(_ count: Int) -> [UInt8] {
    let line = Array("{\"event\":\"tick\",\"symbol\":\"DPLX\",\"price\":101.25,\"volume\":1200}\n".utf8)
    return (0..<count).map { line[$0 % line.count] }
}
