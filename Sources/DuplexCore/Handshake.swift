import Crypto

/// Computes `Sec-WebSocket-Accept` values (RFC 6455 §4.2.2, §1.3).
public enum WebSocketAccept {
    /// The GUID that RFC 6455 appends to the client's key before hashing.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`:
    /// base64(SHA-1(key + ``guid``)). The key is used exactly as given.
    ///
    /// For the RFC's example key `dGhlIHNhbXBsZSBub25jZQ==` this is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
    public static func value(forKey key: String) -> String {
        // Hashed in two parts, without concatenating: a server does this for every handshake.
        var sha1 = Insecure.SHA1()
        var key = key
        key.withUTF8 { sha1.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        guidBytes.withUnsafeBytes { sha1.update(bufferPointer: $0) }
        return sha1.finalize().withUnsafeBytes { Base64.encode($0) }
    }

    private static let guidBytes = Array(guid.utf8)
}

/// How a server picks the subprotocol it speaks from those a client offers in `Sec-WebSocket-Protocol`.
public enum SubprotocolPolicy: Sendable {
    /// Never select a subprotocol, whatever the client offers.
    case none
    /// Select the first subprotocol in the client's offer that is in this list (compared exactly):
    /// the client's order of preference wins. Nothing is selected when the client offers none of them.
    case supported([String])
    /// Let a closure choose from the client's offer, in the client's order. A returned value that the
    /// client did not offer is ignored, since the client would fail the handshake on it.
    case custom(@Sendable ([String]) -> String?)

    /// The subprotocol to accept for a client's offer, or nil to accept none.
    /// - Parameter offered: The subprotocols the client offered, in its order (empty when it sent none).
    public func select(offered: [String]) -> String? {
        switch self {
        case .none:
            return nil
        case .supported(let supported):
            return offered.first { supported.contains($0) }
        case .custom(let choose):
            guard !offered.isEmpty, let chosen = choose(offered), offered.contains(chosen) else { return nil }
            return chosen
        }
    }
}
