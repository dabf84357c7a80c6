/// A `ws://` or `wss://` URL, split into what a connection needs.
public struct WebSocketURL: Sendable, Hashable, CustomStringConvertible {
    /// Whether the connection uses TLS (`wss://`).
    public var isSecure: Bool
    /// The host to connect to: a name, an IPv4 address, or an IPv6 address without brackets.
    public var host: String
    /// The TCP port: explicit, or 80 for `ws://` and 443 for `wss://`.
    public var port: Int
    /// The request target: the path (at least `/`) and the query, if any.
    public var target: String

    /// Parses a URL such as `ws://example.com:8080/chat?room=1` or `ws://[::1]:9001/`.
    /// - Throws: ``WebSocketClientError/invalidURL(_:)`` when the scheme is not `ws`/`wss` or the
    ///   authority is malformed.
    public init(_ string: String) throws(WebSocketClientError) {
        guard let schemeEnd = string.firstRange(of: "://") else { throw .invalidURL(string) }
        switch string[..<schemeEnd.lowerBound].lowercased() {
        case "ws": isSecure = false
        case "wss": isSecure = true
        default: throw .invalidURL(string)
        }
        let rest = string[schemeEnd.upperBound...]
        let delimiters: Set<Character> = ["/", "?", "#"]
        let authorityEnd = rest.firstIndex(where: { delimiters.contains($0) }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if let fragment = target.firstIndex(of: "#") { target = String(target[..<fragment]) }
        if target.isEmpty || target.first == "?" { target = "/" + target }
        self.target = target
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidURL(string) }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw .invalidURL(string) }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw .invalidURL(string) }
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else { throw .invalidURL(string) }
            self.port = port
        } else {
            self.port = isSecure ? 443 : 80
        }
    }

    /// The `Host` header value: the host (bracketed when IPv6) and the port unless it is the default.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isSecure ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// The URL in canonical form.
    public var description: String {
        "\(isSecure ? "wss" : "ws")://\(hostHeader)\(target)"
    }
}
