public import NIOCore

/// Why a server refuses a WebSocket opening handshake request (RFC 6455 §4.2.1).
///
/// Each case maps to the HTTP status the server answers with; ``ServerHandshake/response(rejecting:)``
/// builds that answer.
public enum HandshakeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The method was not GET (405, with `Allow: GET`).
    case methodNotAllowed(String)
    /// The HTTP version was older than 1.1 (400), or not HTTP/1.x at all (505).
    case unsupportedHTTPVersion(HTTPVersion)
    /// There was no `Host` field (400).
    case missingHost
    /// There was more than one `Host` field (400, RFC 9112 §3.2).
    case multipleHosts
    /// `Upgrade` did not list `websocket`: a plain HTTP request (426, with `Upgrade: websocket`).
    case notWebSocketUpgrade
    /// `Connection` did not list `upgrade` (400).
    case missingConnectionUpgrade
    /// There was no `Sec-WebSocket-Key` field (400).
    case missingKey
    /// There was more than one `Sec-WebSocket-Key` field (400).
    case duplicateKey
    /// `Sec-WebSocket-Key` was not the base64 encoding of exactly 16 bytes (400).
    case invalidKey(String)
    /// `Sec-WebSocket-Version` was missing (nil) or not `13` (426, with `Sec-WebSocket-Version: 13`).
    case unsupportedWebSocketVersion(String?)
    /// `Sec-WebSocket-Extensions` did not follow RFC 6455 §9.1 (400).
    case malformedExtensions(ExtensionHeaderError)

    /// The HTTP status to answer with: 400, 405, 426 or 505.
    public var status: Int {
        switch self {
        case .methodNotAllowed: 405
        case .unsupportedHTTPVersion(let version): version.major == 1 ? 400 : 505
        case .notWebSocketUpgrade, .unsupportedWebSocketVersion: 426
        case .missingHost, .multipleHosts, .missingConnectionUpgrade, .missingKey, .duplicateKey, .invalidKey,
             .malformedExtensions:
            400
        }
    }

    /// A human-readable explanation of the failed check, suitable for a plain-text error body.
    public var reason: String {
        switch self {
        case .methodNotAllowed(let method): "WebSocket handshake requires GET, not \(method)"
        case .unsupportedHTTPVersion(let version): "WebSocket handshake requires HTTP/1.1 or later, not \(version)"
        case .missingHost: "Host header is required"
        case .multipleHosts: "Exactly one Host header is allowed"
        case .notWebSocketUpgrade: "Upgrade header must include websocket"
        case .missingConnectionUpgrade: "Connection header must include Upgrade"
        case .missingKey: "Sec-WebSocket-Key header is required"
        case .duplicateKey: "Exactly one Sec-WebSocket-Key header is allowed"
        case .invalidKey: "Sec-WebSocket-Key must be base64 of 16 bytes"
        case .unsupportedWebSocketVersion: "Sec-WebSocket-Version must be 13"
        case .malformedExtensions(let error): "Malformed Sec-WebSocket-Extensions: \(error)"
        }
    }

    /// Same as ``reason``.
    public var description: String { reason }
}

/// The server side of the WebSocket opening handshake (RFC 6455 §4.2): validating a client's
/// request and building the response that accepts or refuses it. Sans-I/O: it only inspects and
/// builds heads.
public enum ServerHandshake {
    /// A request that passed every check of ``ServerHandshake/validate(_:)``, with the handshake fields extracted.
    public struct Request: Sendable, Hashable {
        /// The `Sec-WebSocket-Key` value, trimmed.
        public let key: String
        /// The `Host` value.
        public let host: String
        /// The `Origin` value, or nil when absent (as from non-browser clients).
        public let origin: String?
        /// The subprotocols offered in every `Sec-WebSocket-Protocol` field, comma-split, in the client's
        /// order of preference. Empty when none were offered.
        public let subprotocols: [String]
        /// The extensions offered in every `Sec-WebSocket-Extensions` field, in order.
        public let extensions: [WebSocketExtension]
        /// The request as received.
        public let head: HTTPRequestHead
    }

    /// Checks that `request` is a valid WebSocket opening handshake.
    ///
    /// Checks, in order: method GET; HTTP version at least 1.1; exactly one `Host`; `Upgrade` lists
    /// `websocket` and `Connection` lists `upgrade` (both case-insensitive, among other tokens);
    /// exactly one `Sec-WebSocket-Key` that is base64 of 16 bytes; `Sec-WebSocket-Version` is `13`;
    /// `Sec-WebSocket-Extensions`, if any, is well formed.
    /// - Returns: The handshake fields of the request.
    /// - Throws: The ``HandshakeError`` of the first failed check.
    public static func validate(_ request: HTTPRequestHead) throws(HandshakeError) -> Request {
        let headers = request.headers
        guard request.method == "GET" else { throw .methodNotAllowed(request.method) }
        guard request.version >= .http1_1, request.version.major == 1 else {
            throw .unsupportedHTTPVersion(request.version)
        }
        let hosts = headers.firstValue("Host")
        guard let host = hosts.value else { throw .missingHost }
        guard hosts.count == 1 else { throw .multipleHosts }
        guard headers.containsToken("Upgrade", "websocket") else { throw .notWebSocketUpgrade }
        guard headers.containsToken("Connection", "upgrade") else { throw .missingConnectionUpgrade }
        let keys = headers.firstValue("Sec-WebSocket-Key")
        guard let rawKey = keys.value else { throw .missingKey }
        guard keys.count == 1 else { throw .duplicateKey }
        let trimmedKey = HTTPGrammar.trimmingOWS(Substring(rawKey))
        let key = trimmedKey.utf8.count == rawKey.utf8.count ? rawKey : String(trimmedKey)
        guard let decoded = Base64.decode(key), decoded.count == 16 else { throw .invalidKey(rawKey) }
        let versions = headers.firstValue("Sec-WebSocket-Version")
        guard versions.count == 1, let version = versions.value, HTTPGrammar.trimmingOWS(Substring(version)) == "13" else {
            throw .unsupportedWebSocketVersion(versions.count == 0 ? nil : headers.values("Sec-WebSocket-Version").joined(separator: ", "))
        }
        let extensions: [WebSocketExtension]
        do {
            extensions = try WebSocketExtension.parse(headers.values("Sec-WebSocket-Extensions"))
        } catch {
            throw .malformedExtensions(error)
        }
        return Request(
            key: key, host: host, origin: headers["Origin"], subprotocols: headers.tokens("Sec-WebSocket-Protocol"),
            extensions: extensions, head: request)
    }

    /// The `101 Switching Protocols` response accepting `request`.
    ///
    /// Its fields are `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`, then
    /// `Sec-WebSocket-Protocol` when `subprotocol` is given, `Sec-WebSocket-Extensions` when
    /// `extensions` is not empty, then `extra` in order.
    /// - Parameters:
    ///   - request: The validated request.
    ///   - subprotocol: The selected subprotocol (see ``SubprotocolPolicy``), or nil for none. Must be
    ///     one the client offered.
    ///   - extensions: The accepted extensions with their response parameters; defaults to none.
    ///   - extra: More fields to send, such as `Set-Cookie`; defaults to none.
    public static func response(
        accepting request: Request, subprotocol: String?, extensions: [WebSocketExtension] = [],
        headers extra: HTTPFields = [:]
    ) -> HTTPResponseHead {
        var headers: HTTPFields = [
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Accept": WebSocketAccept.value(forKey: request.key),
        ]
        if let subprotocol { headers.add("Sec-WebSocket-Protocol", subprotocol) }
        if !extensions.isEmpty { headers.add("Sec-WebSocket-Extensions", WebSocketExtension.format(extensions)) }
        for (name, value) in extra { headers.add(name, value) }
        return HTTPResponseHead(status: 101, headers: headers)
    }

    /// The response refusing a handshake that failed with `error`: its status and standard reason
    /// phrase, and a plain-text body holding the error's ``HandshakeError/reason``.
    ///
    /// See ``response(rejecting:reason:)`` for the fields.
    /// - Returns: The head, and the body it announces in `Content-Length`.
    public static func response(rejecting error: HandshakeError) -> (head: HTTPResponseHead, body: ByteBuffer) {
        response(rejecting: error.status, reason: error.reason)
    }

    /// A response refusing a handshake with any status, for failures found before validation
    /// (such as an ``HTTPParseError``).
    ///
    /// Its fields are `Content-Type: text/plain; charset=utf-8`, `Content-Length`, and `Connection:
    /// close`; a 405 adds `Allow: GET`; a 426 adds `Upgrade: websocket` and
    /// `Sec-WebSocket-Version: 13` (with `Connection: Upgrade, close`, as a sender of `Upgrade` must
    /// list it in `Connection`).
    /// - Parameters:
    ///   - status: The status code; the reason phrase is its standard one.
    ///   - reason: A human-readable explanation; the body is this plus a newline.
    /// - Returns: The head, and the body it announces in `Content-Length`.
    public static func response(rejecting status: Int, reason: String) -> (head: HTTPResponseHead, body: ByteBuffer) {
        let body = ByteBuffer(string: reason + "\n")
        var headers: HTTPFields = [
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Length": String(body.readableBytes),
        ]
        switch status {
        case 405:
            headers.add("Allow", "GET")
            headers.add("Connection", "close")
        case 426:
            headers.add("Upgrade", "websocket")
            headers.add("Sec-WebSocket-Version", "13")
            headers.add("Connection", "Upgrade, close")
        default:
            headers.add("Connection", "close")
        }
        return (HTTPResponseHead(status: status, headers: headers), body)
    }
}
