/// Why a client refuses a server's answer to its opening handshake (RFC 6455 §4.1).
public enum ClientHandshakeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status was not 101 Switching Protocols; carries the status and reason phrase received.
    case unexpectedStatus(Int, String)
    /// `Upgrade` did not list `websocket`; carries the value received, nil when absent.
    case missingUpgrade(String?)
    /// `Connection` did not list `upgrade`; carries the value received, nil when absent.
    case missingConnectionUpgrade(String?)
    /// There was no `Sec-WebSocket-Accept` field.
    case missingAccept
    /// `Sec-WebSocket-Accept` did not match the key sent (or appeared more than once).
    case wrongAccept(expected: String, received: String)
    /// `Sec-WebSocket-Protocol` named a subprotocol the client did not offer, or more than one.
    case unofferedSubprotocol(String)
    /// `Sec-WebSocket-Extensions` did not follow RFC 6455 §9.1.
    case malformedExtensions(ExtensionHeaderError)
    /// `Sec-WebSocket-Extensions` named an extension the client did not offer.
    case unofferedExtension(String)

    /// Which check failed, and what the server sent.
    public var description: String {
        switch self {
        case .unexpectedStatus(let status, let reason):
            "Handshake failed: expected status 101, got \(status) \(reason)"
        case .missingUpgrade(let value):
            "Handshake failed: Upgrade header must include websocket, got \(value.map { "\"\($0)\"" } ?? "none")"
        case .missingConnectionUpgrade(let value):
            "Handshake failed: Connection header must include Upgrade, got \(value.map { "\"\($0)\"" } ?? "none")"
        case .missingAccept:
            "Handshake failed: Sec-WebSocket-Accept header is missing"
        case .wrongAccept(let expected, let received):
            "Handshake failed: Sec-WebSocket-Accept is \"\(received)\", expected \"\(expected)\""
        case .unofferedSubprotocol(let value):
            "Handshake failed: server selected subprotocol \"\(value)\", which was not offered (or not a single value)"
        case .malformedExtensions(let error):
            "Handshake failed: \(error)"
        case .unofferedExtension(let name):
            "Handshake failed: server accepted extension \"\(name)\", which was not offered"
        }
    }
}

/// The client side of the WebSocket opening handshake (RFC 6455 §4.1): the request to send, and
/// validation of the server's response. Sans-I/O: it only builds and inspects heads.
public struct ClientHandshake: Sendable {
    /// What the server agreed to in a valid response.
    public struct Accepted: Sendable, Hashable {
        /// The subprotocol the server selected, or nil for none.
        public let subprotocol: String?
        /// The extensions the server accepted, with their response parameters, in order.
        public let extensions: [WebSocketExtension]
        /// The response as received.
        public let head: HTTPResponseHead
    }

    /// The `Sec-WebSocket-Key` sent: base64 of 16 bytes.
    public let key: String
    /// The subprotocols offered, in order of preference.
    public let subprotocols: [String]
    /// The extensions offered.
    public let extensions: [WebSocketExtension]
    /// The request to send. It may be changed before sending; validation uses ``key``,
    /// ``subprotocols`` and ``extensions``, not this.
    public var request: HTTPRequestHead

    /// Whether `name` may be offered as a subprotocol: an HTTP token (RFC 6455 §4.1, RFC 9110 §5.6.2).
    public static func isValidSubprotocol(_ name: String) -> Bool {
        HTTPGrammar.isToken(name)
    }

    /// Prepares a handshake request.
    ///
    /// The request is `GET target HTTP/1.1` with, in order: `Host`, `Upgrade: websocket`,
    /// `Connection: Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`,
    /// `Sec-WebSocket-Protocol` (the subprotocols joined by `, `; only when there are any),
    /// `Sec-WebSocket-Extensions` (only when there are any), then `headers`.
    /// - Parameters:
    ///   - host: The `Host` value: the host, with `:port` when not the scheme's default, and an IPv6
    ///     address in brackets (`[::1]:8080`).
    ///   - target: The path and query; defaults to `/` (also used when empty).
    ///   - headers: More fields to send, such as `Origin` or `Authorization`; defaults to none.
    ///   - subprotocols: Subprotocols to offer, most preferred first; defaults to none.
    ///   - extensions: Extensions to offer; defaults to none.
    ///   - key: The `Sec-WebSocket-Key`; nil (the default) generates base64 of 16 random bytes from
    ///     `SystemRandomNumberGenerator`. Give one only for tests.
    public init(
        host: String, target: String = "/", headers: HTTPFields = [:], subprotocols: [String] = [],
        extensions: [WebSocketExtension] = [], key: String? = nil
    ) {
        let key = key ?? Self.randomKey()
        self.key = key
        self.subprotocols = subprotocols
        self.extensions = extensions
        var fields: HTTPFields = [
            "Host": host,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        ]
        if !subprotocols.isEmpty { fields.add("Sec-WebSocket-Protocol", subprotocols.joined(separator: ", ")) }
        if !extensions.isEmpty { fields.add("Sec-WebSocket-Extensions", WebSocketExtension.format(extensions)) }
        for (name, value) in headers { fields.add(name, value) }
        request = HTTPRequestHead(method: "GET", target: target.isEmpty ? "/" : target, version: .http1_1, headers: fields)
    }

    /// The `Sec-WebSocket-Accept` value a valid response must carry for ``key``.
    public var expectedAccept: String { WebSocketAccept.value(forKey: key) }

    /// Checks the server's response to ``request``.
    ///
    /// Checks, in order: status 101; `Upgrade` lists `websocket`; `Connection` lists `upgrade`;
    /// exactly one `Sec-WebSocket-Accept`, equal to ``expectedAccept``; `Sec-WebSocket-Protocol`, if
    /// present, is a single value among ``subprotocols``; `Sec-WebSocket-Extensions`, if present,
    /// parses and names only extensions among ``extensions``.
    /// - Returns: The negotiated subprotocol and extensions.
    /// - Throws: The ``ClientHandshakeError`` of the first failed check.
    public func validate(_ response: HTTPResponseHead) throws(ClientHandshakeError) -> Accepted {
        let headers = response.headers
        guard response.status == 101 else { throw .unexpectedStatus(response.status, response.reason) }
        guard headers.containsToken("Upgrade", "websocket") else { throw .missingUpgrade(joined(headers, "Upgrade")) }
        guard headers.containsToken("Connection", "upgrade") else {
            throw .missingConnectionUpgrade(joined(headers, "Connection"))
        }
        let accepts = headers.values("Sec-WebSocket-Accept")
        guard !accepts.isEmpty else { throw .missingAccept }
        let expected = expectedAccept
        guard accepts.count == 1, HTTPGrammar.trimmingOWS(Substring(accepts[0])) == expected else {
            throw .wrongAccept(expected: expected, received: accepts.joined(separator: ", "))
        }
        var subprotocol: String?
        if headers.contains("Sec-WebSocket-Protocol") {
            let selected = headers.tokens("Sec-WebSocket-Protocol")
            guard selected.count == 1, subprotocols.contains(selected[0]) else {
                throw .unofferedSubprotocol(joined(headers, "Sec-WebSocket-Protocol") ?? "")
            }
            subprotocol = selected[0]
        }
        let accepted: [WebSocketExtension]
        do {
            accepted = try WebSocketExtension.parse(headers.values("Sec-WebSocket-Extensions"))
        } catch {
            throw .malformedExtensions(error)
        }
        for ext in accepted where !extensions.contains(where: { HTTPGrammar.equalsIgnoringASCIICase($0.name, ext.name) }) {
            throw .unofferedExtension(ext.name)
        }
        return Accepted(subprotocol: subprotocol, extensions: accepted, head: response)
    }

    private func joined(_ headers: HTTPFields, _ name: String) -> String? {
        let values = headers.values(name)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    private static func randomKey() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        return Base64.encode(bytes)
    }
}
