public import DuplexCore

/// The permessage-deflate WebSocket extension (RFC 7692): negotiation of its parameters in the
/// opening handshake, and the zlib codec that compresses and inflates messages once it is agreed.
///
/// A server calls ``negotiate(offers:configuration:)`` with the client's `Sec-WebSocket-Extensions`
/// offers; a client sends ``offer(configuration:)`` and checks the server's answer with
/// ``accept(response:configuration:)``. Both then build the codec with
/// ``makeCodec(parameters:isServer:configuration:)`` and hand it to the connection.
///
/// Every window size of the RFC, 8 through 15, is supported both ways. zlib refuses raw deflate
/// with an 8-bit (256-byte) window, so an endpoint that agreed to compress with 8 bits compresses
/// with zlib's 9-bit window: zlib keeps 262 bytes of look-ahead out of that window, so its matches
/// reach at most 250 bytes back, and the stream inflates with a 256-byte window.
public enum PerMessageDeflate {
    /// The extension's registered name, `permessage-deflate`.
    public static let name = "permessage-deflate"

    /// What this endpoint wants from permessage-deflate. `.init()` is a safe default.
    ///
    /// The window sizes are base-2 logarithms of the LZ77 window: 15 is 32 KiB, 9 is 512 bytes.
    /// A server's own window is ``serverMaxWindowBits`` and a client's is ``clientMaxWindowBits``;
    /// the other one is what this endpoint asks of its peer. Values outside the documented ranges
    /// are clamped into them.
    ///
    /// With the defaults, a connection holds about 300 KiB of zlib state: the compressor
    /// (window 15, memory level 8) about 262 KiB, the decompressor about 39 KiB.
    public struct Configuration: Sendable, Hashable {
        /// The base-2 logarithm of the server's compression window. Default 15 (32 KiB).
        ///
        /// A server compresses with at most this window (8...15) and announces it when it is under
        /// 15. A client asks the server for at most this window with `server_max_window_bits` when
        /// it is under 15.
        public var serverMaxWindowBits: Int
        /// The base-2 logarithm of the client's compression window. Default 15 (32 KiB).
        ///
        /// A client compresses with at most this window (8...15) and offers
        /// `client_max_window_bits` with this value when it is under 15, without a value otherwise.
        /// A server asks the client for at most this window (8...15) when it is under 15 and the
        /// client's offer allows it; a smaller client window makes the server's decompressor smaller.
        public var clientMaxWindowBits: Int
        /// Whether the server resets its compressor after each message. Default `false`.
        ///
        /// Resetting costs compression ratio (each message starts with an empty window) but lets
        /// either side treat messages independently. A server honours a client that asks for it
        /// either way.
        public var serverNoContextTakeover: Bool
        /// Whether the client resets its compressor after each message. Default `false`.
        public var clientNoContextTakeover: Bool
        /// The zlib compression level, 1 (fastest) to 9 (smallest); 0 stores without compressing.
        /// Default 6, zlib's own default and what browsers, Node `ws` and Python `websockets` use:
        /// on the small messages typical of WebSocket traffic it costs little more CPU than level 1
        /// for a noticeably better ratio. Choose 1 when CPU matters more than bandwidth.
        public var compressionLevel: Int
        /// The zlib memory level, 1...9: the size of the compressor's hash tables,
        /// `1 << (memoryLevel + 9)` bytes. Default 8 (128 KiB), zlib's default.
        public var memoryLevel: Int
        /// The smallest payload, in bytes, that is compressed; smaller messages are sent as they
        /// are, since deflate rarely shrinks them. Default 32.
        public var minimumSize: Int

        /// Creates a configuration; every parameter has the documented default.
        /// - Parameters:
        ///   - serverMaxWindowBits: The server's window, 8...15. Default 15.
        ///   - clientMaxWindowBits: The client's window, 8...15. Default 15.
        ///   - serverNoContextTakeover: Whether the server resets its compressor per message. Default `false`.
        ///   - clientNoContextTakeover: Whether the client resets its compressor per message. Default `false`.
        ///   - compressionLevel: zlib level, 0...9. Default 6.
        ///   - memoryLevel: zlib memory level, 1...9. Default 8.
        ///   - minimumSize: The smallest payload compressed, in bytes. Default 32.
        public init(
            serverMaxWindowBits: Int = 15,
            clientMaxWindowBits: Int = 15,
            serverNoContextTakeover: Bool = false,
            clientNoContextTakeover: Bool = false,
            compressionLevel: Int = 6,
            memoryLevel: Int = 8,
            minimumSize: Int = 32
        ) {
            self.serverMaxWindowBits = serverMaxWindowBits
            self.clientMaxWindowBits = clientMaxWindowBits
            self.serverNoContextTakeover = serverNoContextTakeover
            self.clientNoContextTakeover = clientNoContextTakeover
            self.compressionLevel = compressionLevel
            self.memoryLevel = memoryLevel
            self.minimumSize = minimumSize
        }

        /// A configuration for many connections with little memory each: no context takeover
        /// either way, 1 KiB windows (10 bits) and memory level 4.
        ///
        /// A connection then holds about 26 KiB of zlib state: the compressor about 18 KiB
        /// (4 KiB window, 8 KiB hash tables, 6 KiB state) and the decompressor about 8 KiB
        /// (1 KiB window, 7 KiB state). A server's decompressor only gets the small window when
        /// the client offered `client_max_window_bits`; otherwise it needs 32 KiB more.
        public static let lowMemory = Configuration(
            serverMaxWindowBits: 10,
            clientMaxWindowBits: 10,
            serverNoContextTakeover: true,
            clientNoContextTakeover: true,
            memoryLevel: 4
        )

        /// ``serverMaxWindowBits`` clamped to the RFC's 8...15.
        var serverWindowBits: Int { Self.clamp(serverMaxWindowBits, 8...15) }
        /// ``clientMaxWindowBits`` clamped to the RFC's 8...15.
        var clientWindowBits: Int { Self.clamp(clientMaxWindowBits, 8...15) }

        static func clamp(_ value: Int, _ range: ClosedRange<Int>) -> Int {
            min(max(value, range.lowerBound), range.upperBound)
        }
    }

    /// The parameters both endpoints agreed in the handshake: each side's largest compression
    /// window and whether it resets its compressor after every message.
    public struct Parameters: Sendable, Hashable {
        /// The base-2 logarithm of the window the server compresses with at most, 8...15.
        /// Default 15.
        public var serverMaxWindowBits: Int
        /// The base-2 logarithm of the window the client compresses with at most, 8...15.
        /// Default 15.
        public var clientMaxWindowBits: Int
        /// Whether the server resets its compressor after each message. Default `false`.
        public var serverNoContextTakeover: Bool
        /// Whether the client resets its compressor after each message. Default `false`.
        public var clientNoContextTakeover: Bool

        /// Creates agreed parameters; the defaults are those of a bare `permessage-deflate`.
        /// - Parameters:
        ///   - serverMaxWindowBits: The server's window, 8...15. Default 15.
        ///   - clientMaxWindowBits: The client's window, 8...15. Default 15.
        ///   - serverNoContextTakeover: Whether the server resets per message. Default `false`.
        ///   - clientNoContextTakeover: Whether the client resets per message. Default `false`.
        public init(
            serverMaxWindowBits: Int = 15,
            clientMaxWindowBits: Int = 15,
            serverNoContextTakeover: Bool = false,
            clientNoContextTakeover: Bool = false
        ) {
            self.serverMaxWindowBits = serverMaxWindowBits
            self.clientMaxWindowBits = clientMaxWindowBits
            self.serverNoContextTakeover = serverNoContextTakeover
            self.clientNoContextTakeover = clientNoContextTakeover
        }
    }

    /// Builds the codec for one connection from the agreed parameters.
    ///
    /// The local side compresses with its own agreed window and resets its compressor after each
    /// message when its no-context-takeover flag is set; it inflates with the peer's agreed window
    /// and resets its decompressor after each message when the peer's flag is set.
    ///
    /// The codec creates its zlib streams when it first needs them, so an idle connection holds no
    /// zlib memory. A zlib failure then (out of memory) surfaces as
    /// ``ProtocolError/extensionFailure(_:)`` from the message being compressed or inflated.
    /// - Parameters:
    ///   - parameters: What the handshake agreed.
    ///   - isServer: Whether this endpoint is the server.
    ///   - configuration: Supplies the compression level, memory level and ``Configuration/minimumSize``.
    ///   - sharedStreams: Streams shared with the other connections of this thread, borrowed for
    ///     each message by a direction without context takeover; nil (the default) gives the
    ///     connection its own.
    /// - Returns: A new codec, to be used by one connection only, on the thread of `sharedStreams`.
    /// - Throws: ``CodecError/unsupportedWindowBits(_:)`` if a window is outside 8...15.
    public static func makeCodec(
        parameters: Parameters,
        isServer: Bool,
        configuration: Configuration = .init(),
        sharedStreams: SharedStreams? = nil
    ) throws(CodecError) -> any MessageCompression {
        let local = isServer ? parameters.serverMaxWindowBits : parameters.clientMaxWindowBits
        let peer = isServer ? parameters.clientMaxWindowBits : parameters.serverMaxWindowBits
        guard (8...15).contains(local) else { throw .unsupportedWindowBits(local) }
        guard (8...15).contains(peer) else { throw .unsupportedWindowBits(peer) }
        return DeflateCodec(
            localWindowBits: local,
            peerWindowBits: peer,
            localNoContextTakeover: isServer ? parameters.serverNoContextTakeover : parameters.clientNoContextTakeover,
            peerNoContextTakeover: isServer ? parameters.clientNoContextTakeover : parameters.serverNoContextTakeover,
            compressionLevel: Configuration.clamp(configuration.compressionLevel, 0...9),
            memoryLevel: Configuration.clamp(configuration.memoryLevel, 1...9),
            minimumSize: max(configuration.minimumSize, 0),
            shared: sharedStreams
        )
    }

    /// Why ``makeCodec(parameters:isServer:configuration:)`` could not build a codec.
    public enum CodecError: Error, Sendable, Hashable, CustomStringConvertible {
        /// A window size outside the RFC's 8...15.
        case unsupportedWindowBits(Int)

        /// A human-readable explanation.
        public var description: String {
            switch self {
            case .unsupportedWindowBits(let bits): "permessage-deflate: unsupported window of \(bits) bits"
            }
        }
    }
}
