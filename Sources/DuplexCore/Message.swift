public import NIOCore

/// A whole WebSocket message: text or binary, and its bytes.
///
/// A text message's bytes are UTF-8 (validated on receipt); ``text`` decodes them.
public struct WebSocketMessage: Sendable, Hashable, CustomStringConvertible {
    /// The two kinds of data message.
    public enum Kind: Sendable, Hashable {
        /// UTF-8 text.
        case text
        /// Arbitrary bytes.
        case binary
    }

    /// Whether the message is text or binary.
    public var kind: Kind
    /// The message's bytes (UTF-8 for text).
    public var data: ByteBuffer

    /// Creates a message of `kind` from `data`.
    @inlinable
    public init(kind: Kind, data: ByteBuffer) {
        self.kind = kind
        self.data = data
    }

    /// A text message.
    @inlinable
    public static func text(_ string: String) -> WebSocketMessage {
        WebSocketMessage(kind: .text, data: ByteBuffer(string: string))
    }

    /// A binary message.
    @inlinable
    public static func binary(_ data: ByteBuffer) -> WebSocketMessage {
        WebSocketMessage(kind: .binary, data: data)
    }

    /// A binary message holding `bytes`.
    @inlinable
    public static func binary(_ bytes: some Sequence<UInt8>) -> WebSocketMessage {
        WebSocketMessage(kind: .binary, data: ByteBuffer(bytes: bytes))
    }

    /// The text of a text message; `nil` for a binary message.
    public var text: String? {
        kind == .text ? String(buffer: data) : nil
    }

    /// `text(…)` or `binary(N bytes)`.
    public var description: String {
        switch kind {
        case .text: "text(\(data.readableBytes) bytes)"
        case .binary: "binary(\(data.readableBytes) bytes)"
        }
    }
}

/// The state of a connection, numbered as in the browser's `WebSocket.readyState`.
public enum ReadyState: Int, Sendable, Hashable, Comparable {
    /// The opening handshake has not finished.
    case connecting = 0
    /// Messages can be sent and received.
    case open = 1
    /// A close frame has been sent; waiting for the peer's.
    case closing = 2
    /// The connection is over.
    case closed = 3

    public static func < (lhs: ReadyState, rhs: ReadyState) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// How a connection ended, as a browser's `CloseEvent` reports it.
public struct CloseInfo: Sendable, Hashable, CustomStringConvertible {
    /// The code of the close frame received from the peer; ``CloseCode/noStatusReceived`` when it had
    /// none; ``CloseCode/abnormalClosure`` when none arrived; or, when this endpoint failed the
    /// connection, the code it sent.
    public var code: CloseCode
    /// The reason that came with ``code``.
    public var reason: String
    /// Whether both close frames were exchanged (the closing handshake completed).
    public var wasClean: Bool
    /// The peer's protocol violation, when this endpoint failed the connection because of one.
    public var error: ProtocolError?

    /// Creates a close record.
    public init(code: CloseCode, reason: String = "", wasClean: Bool, error: ProtocolError? = nil) {
        self.code = code
        self.reason = reason
        self.wasClean = wasClean
        self.error = error
    }

    /// For example `1000 (normal closure) "bye", clean`.
    public var description: String {
        "\(code)\(reason.isEmpty ? "" : " \"\(reason)\""), \(wasClean ? "clean" : "not clean")"
    }
}

/// A misuse of a connection by the application. The connection itself is unharmed.
public enum ConnectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The connection is not open: messages can be sent only while it is.
    case notOpen(ReadyState)
    /// A ping or pong payload over 125 bytes.
    case controlPayloadTooLong(Int)
    /// A close code that may not be sent (see ``CloseCode/isValidOnWire``).
    case invalidCloseCode(CloseCode)
    /// A close reason over 123 bytes of UTF-8.
    case closeReasonTooLong(Int)
    /// The negotiated compression failed to compress a message.
    case compressionFailed(String)
    /// The peer reads too slowly: sending would queue more than the connection's limit of bytes
    /// not yet taken by the socket. The connection is being closed with 1008.
    case bufferLimitExceeded(limit: Int)

    public var description: String {
        switch self {
        case .notOpen(let state): "connection is not open (state \(state))"
        case .controlPayloadTooLong(let length): "control frame payload of \(length) bytes exceeds 125"
        case .invalidCloseCode(let code): "close code \(code.rawValue) may not be sent"
        case .closeReasonTooLong(let length): "close reason of \(length) bytes exceeds 123"
        case .compressionFailed(let reason): "compression failed: \(reason)"
        case .bufferLimitExceeded(let limit): "slow consumer: more than \(limit) bytes queued"
        }
    }
}
