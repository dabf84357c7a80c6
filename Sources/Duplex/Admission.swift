public import DuplexCore
public import NIOCore

/// What an admission hook knows of a WebSocket request that passed the handshake checks, the
/// Origin policy and the connection limits.
public struct AdmissionRequest: Sendable {
    /// The client's address: the TCP peer, or behind a trusted proxy the address it forwarded.
    public let clientAddress: SocketAddress?
    /// The TCP peer (the proxy, when there is one).
    public let peerAddress: SocketAddress?
    /// The request: target (path and query) and headers.
    public let head: HTTPRequestHead
    /// The connections open now from the client's address (its IPv4 address, or IPv6 /64), this
    /// one included.
    public let connectionsFromAddress: Int

    /// The request's path, without the query.
    public var path: String {
        String(head.target.prefix { $0 != "?" })
    }

    /// The first value of a query parameter, percent-decoded, or nil when the query has none.
    public func queryItem(_ name: String) -> String? {
        guard let query = head.target.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard percentDecoded(parts[0]) == name else { continue }
            return parts.count == 2 ? percentDecoded(parts[1]) : ""
        }
        return nil
    }
}

/// `text` with `+` as space and `%XX` escapes decoded; an invalid escape stays as it is, and bytes
/// that are not UTF-8 become U+FFFD.
func percentDecoded(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var utf8 = text.utf8[...]
    while let byte = utf8.popFirst() {
        if byte == UInt8(ascii: "%"), utf8.count >= 2,
           let high = hexValue(utf8[utf8.startIndex]), let low = hexValue(utf8[utf8.index(after: utf8.startIndex)]) {
            bytes.append(high << 4 | low)
            utf8 = utf8.dropFirst(2)
        } else {
            bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// An admission hook's answer.
public enum AdmissionDecision: Sendable, Hashable {
    /// Open the connection.
    case accept
    /// Refuse it with an HTTP status (4xx or 5xx; anything else is sent as 403) and a reason, sent
    /// as a plain-text body.
    case reject(status: Int, reason: String)
    /// Refuse it until the client proves something — typically a token from a captcha page.
    case challenge(AdmissionChallenge)
}

/// A refusal that tells the client how to get in: a status (401 by default), a reason, and fields
/// such as `WWW-Authenticate` or `Link` that point at the page that issues tokens.
///
/// Browsers do not show a script the response to a failed WebSocket handshake, so a web
/// application learns of the challenge out of band: the page that opens the socket fetches the
/// challenge page (or the `Link` it was given before) when the socket fails to open, and retries
/// with the token it gets there.
public struct AdmissionChallenge: Sendable, Hashable {
    /// The response status. Default 401.
    public var status: Int
    /// The plain-text body.
    public var reason: String
    /// Extra response fields.
    public var headers: HTTPFields

    public init(status: Int = 401, reason: String, headers: HTTPFields = [:]) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }
}

/// An application's say on each connection, after the server's own checks and before the 101:
/// accept, reject or challenge. It runs off the event loop; the handshake timeout still applies.
///
/// Ask for a token from addresses that open many connections (the token as a captcha page
/// issues it, in the `token` query parameter):
///
/// ```swift
/// let admission: AdmissionHook = { request in
///     guard request.connectionsFromAddress > 20 else { return .accept }
///     if let token = request.queryItem("token"), await captchaTokens.redeem(token) { return .accept }
///     return .challenge(AdmissionChallenge(
///         reason: "too many connections from your address: solve the captcha at /captcha",
///         headers: ["WWW-Authenticate": #"Captcha realm="duplex", url="/captcha""#]))
/// }
/// ```
public typealias AdmissionHook = @Sendable (AdmissionRequest) async -> AdmissionDecision

/// A server's admission state, shared by its connections: the counts, the trusted proxies and the
/// application's hook.
final class ServerGate: Sendable {
    let counter: ConnectionCounter
    let trustedProxies: [IPNetwork]
    let hook: AdmissionHook?
    let http: HTTPResponder?

    init(limits: ServerLimits, trustedProxies: [IPNetwork], hook: AdmissionHook?, http: HTTPResponder?) {
        counter = ConnectionCounter(limits: limits)
        self.trustedProxies = trustedProxies
        self.hook = hook
        self.http = http
    }

    var retryAfter: TimeAmount { counter.limits.retryAfter }

    func isTrustedProxy(_ address: SocketAddress?) -> Bool {
        guard let address else { return false }
        return trustedProxies.contains { $0.contains(address) }
    }

    /// The response for a refused request: its status, the reason as a plain-text body, and fields.
    static func response(status: Int, reason: String, headers: HTTPFields = [:]) -> (head: HTTPResponseHead, body: ByteBuffer) {
        var response = ServerHandshake.response(rejecting: (400..<600).contains(status) ? status : 403, reason: reason)
        for (name, value) in headers { response.head.headers.add(name, value) }
        return response
    }

    /// A 429 or 503 response with `Retry-After`.
    func limitResponse(status: Int, reason: String) -> (head: HTTPResponseHead, body: ByteBuffer) {
        Self.response(status: status, reason: reason, headers: ["Retry-After": String(max(1, retryAfter.nanoseconds / 1_000_000_000))])
    }
}
