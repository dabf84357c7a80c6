import CompressNIO

extension PerMessageDeflate {
    /// zlib streams shared by the connections of one thread, for the directions that start every
    /// message afresh (no context takeover).
    ///
    /// A compressor with context takeover must keep its window between messages, so each connection
    /// holds its own. Without context takeover a stream holds nothing worth keeping between
    /// messages: a connection borrows one from here for a message and gives it back reset. Since a
    /// message is compressed in one call, one compressor per setting serves every connection of the
    /// thread; a decompressor is held across the fragments of one message, so a few are kept.
    ///
    /// With `server_no_context_takeover` and `client_no_context_takeover` agreed, a server's
    /// connections then hold no zlib memory of their own: the thread holds one compressor (about
    /// 262 KiB at window 15 and memory level 8) and a few decompressors (about 40 KiB each).
    ///
    /// Not `Sendable`: create one per thread (per event loop) and use it only there.
    public final class SharedStreams {
        /// What a compressor is set up with; streams are shared only between equal settings.
        struct CompressorSettings: Hashable {
            var windowBits: Int
            var level: Int
            var memoryLevel: Int
        }

        /// The most idle decompressors kept per window size.
        static let idleDecompressorLimit = 16

        private var compressors: [CompressorSettings: ZlibCompressor] = [:]
        private var decompressors: [Int: [ZlibDecompressor]] = [:]

        /// Creates an empty set; streams are made when first needed.
        public init() {}

        /// The number of idle streams kept, compressors and decompressors.
        public var idleCount: (compressors: Int, decompressors: Int) {
            (compressors.count, decompressors.values.reduce(0) { $0 + $1.count })
        }

        func takeCompressor(_ settings: CompressorSettings) throws -> ZlibCompressor {
            if let compressor = compressors.removeValue(forKey: settings) { return compressor }
            return try Self.makeCompressor(settings)
        }

        /// Takes back a compressor that has been reset.
        func give(_ compressor: ZlibCompressor, settings: CompressorSettings) {
            compressors[settings] = compressor
        }

        func takeDecompressor(windowBits: Int) throws -> ZlibDecompressor {
            if let decompressor = decompressors[windowBits]?.popLast() { return decompressor }
            return try Self.makeDecompressor(windowBits: windowBits)
        }

        /// Takes back a decompressor that has been reset; beyond the limit it is freed.
        func give(_ decompressor: ZlibDecompressor, windowBits: Int) {
            guard decompressors[windowBits, default: []].count < Self.idleDecompressorLimit else { return }
            decompressors[windowBits, default: []].append(decompressor)
        }

        static func makeCompressor(_ settings: CompressorSettings) throws -> ZlibCompressor {
            // `.deflate` is raw deflate: compress-nio passes zlib a negative windowBits.
            try ZlibCompressor(algorithm: .deflate, configuration: ZlibConfiguration(
                windowSize: Int32(settings.windowBits),
                compressionLevel: Int32(settings.level),
                memoryLevel: Int32(settings.memoryLevel),
                strategy: .default))
        }

        static func makeDecompressor(windowBits: Int) throws -> ZlibDecompressor {
            try ZlibDecompressor(algorithm: .deflate, windowSize: Int32(windowBits))
        }
    }
}
