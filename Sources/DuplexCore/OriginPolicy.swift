/// Which web origins may open a WebSocket: the defence against cross-site WebSocket hijacking,
/// where a page on another site opens a socket to this server with the visitor's cookies.
///
/// Browsers always send `Origin` on a WebSocket handshake and scripts cannot forge it; other clients
/// usually send none. The default, ``sameOrigin``, accepts a request without `Origin` and a browser
/// whose page has the same host and port as the request's `Host`, and refuses every other origin.
///
/// ```swift
/// var policy = OriginPolicy.sameOrigin
/// policy.allowed = ["https://app.example.com", "https://*.example.com", "http://localhost:3000"]
/// ```
///
/// Origins are compared by scheme, host and port, case-insensitively, with the scheme's default port
/// when none is written (`https://example.com` is `https://example.com:443`).
public struct OriginPolicy: Sendable, Hashable {
    /// Origins allowed besides the same origin. Each is an exact origin (`https://app.example.com`,
    /// `http://localhost:3000`), a wildcard over subdomains (`https://*.example.com` matches
    /// `https://a.example.com` and `https://a.b.example.com`, not `https://example.com`), `null`
    /// for the opaque origin of sandboxed frames and `file:` pages, or `*` for any origin.
    public var allowed: [String] {
        didSet { patterns = allowed.map(Pattern.init) }
    }
    /// Whether a page whose host and port equal the request's `Host` is allowed. Default `true`.
    public var allowsSameOrigin: Bool
    /// Whether a request without `Origin` (a non-browser client) is allowed. Default `true`.
    public var allowsMissingOrigin: Bool

    private var patterns: [Pattern]

    /// Creates a policy.
    /// - Parameters:
    ///   - allowed: Origins allowed besides the same origin. Default none.
    ///   - allowsSameOrigin: Whether the same origin is allowed. Default `true`.
    ///   - allowsMissingOrigin: Whether a request without `Origin` is allowed. Default `true`.
    public init(allowed: [String] = [], allowsSameOrigin: Bool = true, allowsMissingOrigin: Bool = true) {
        self.allowed = allowed
        self.allowsSameOrigin = allowsSameOrigin
        self.allowsMissingOrigin = allowsMissingOrigin
        self.patterns = allowed.map(Pattern.init)
    }

    /// Same-origin browsers and clients without `Origin`; every other origin is refused.
    public static let sameOrigin = OriginPolicy()
    /// Every origin, and none. Only for servers whose sockets carry no credentials.
    public static let any = OriginPolicy(allowed: ["*"])

    /// Why a request's origin was refused.
    public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        /// The `Origin` value, or nil when it was missing.
        public let origin: String?
        /// The reason, for the 403 response.
        public var description: String {
            guard let origin else { return "a request without Origin is not allowed" }
            return "origin \(origin.prefix(100)) is not allowed"
        }
    }

    /// Checks a request's origin.
    /// - Parameters:
    ///   - origin: The request's `Origin` value, or nil when it has none.
    ///   - host: The request's `Host` value.
    /// - Throws: ``Refusal`` when the origin is not allowed.
    public func check(origin: String?, host: String) throws(Refusal) {
        guard let origin else {
            if allowsMissingOrigin { return }
            throw Refusal(origin: nil)
        }
        let parsed = Origin(origin)
        if allowsSameOrigin, let parsed, let host = HostPort(host), parsed.host == host.host,
           parsed.port == (host.port ?? parsed.port) {
            return
        }
        let lowered = HTTPGrammar.asciiLowercased(origin)
        for pattern in patterns where pattern.matches(parsed, raw: lowered) { return }
        throw Refusal(origin: origin)
    }

    /// A serialized origin, `scheme://host[:port]`, split and lowercased.
    struct Origin: Hashable {
        var scheme: String
        var host: String
        var port: Int

        init?(_ text: String) {
            let lowered = HTTPGrammar.asciiLowercased(text)
            guard let separator = lowered.firstRange(of: "://") else { return nil }
            scheme = String(lowered[..<separator.lowerBound])
            guard !scheme.isEmpty, let authority = HostPort(String(lowered[separator.upperBound...])), !authority.host.isEmpty
            else { return nil }
            let defaultPort: Int? = switch scheme {
            case "http", "ws": 80
            case "https", "wss": 443
            default: nil
            }
            guard let port = authority.port ?? defaultPort else { return nil }
            host = authority.host
            self.port = port
        }
    }

    /// `host[:port]` or `[v6]:port`, as in `Host` or an origin's authority.
    struct HostPort {
        var host: String
        var port: Int?

        init?(_ text: String) {
            let text = HTTPGrammar.asciiLowercased(String(HTTPGrammar.trimmingOWS(Substring(text))))
            var hostPart = Substring(text)
            var portPart: Substring?
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                hostPart = text[...close]
                let rest = text[text.index(after: close)...]
                if !rest.isEmpty {
                    guard rest.first == ":" else { return nil }
                    portPart = rest.dropFirst()
                }
            } else if let colon = text.lastIndex(of: ":") {
                hostPart = text[..<colon]
                portPart = text[text.index(after: colon)...]
            }
            guard !hostPart.contains("/"), !hostPart.contains("@") else { return nil }
            host = String(hostPart)
            if let portPart {
                guard !portPart.isEmpty, portPart.utf8.allSatisfy({ (0x30...0x39).contains($0) }), portPart.count <= 5,
                      let port = Int(portPart), port <= 65535
                else { return nil }
                self.port = port
            }
        }
    }

    /// One entry of ``allowed``.
    struct Pattern: Hashable {
        enum Kind: Hashable {
            case anything
            case exact(Origin)
            case subdomains(scheme: String, suffix: String, port: Int)
            case literal(String)  // "null", or an entry that is not an origin: compared as written
        }

        let kind: Kind

        init(_ entry: String) {
            let lowered = HTTPGrammar.asciiLowercased(String(HTTPGrammar.trimmingOWS(Substring(entry))))
            if lowered == "*" {
                kind = .anything
            } else if let wildcard = lowered.firstRange(of: "://*."),
                      let origin = Origin(lowered.replacing("://*.", with: "://wildcard.", subrange: wildcard)) {
                kind = .subdomains(scheme: origin.scheme, suffix: String(origin.host.dropFirst("wildcard".count)), port: origin.port)
            } else if let origin = Origin(lowered) {
                kind = .exact(origin)
            } else {
                kind = .literal(lowered)
            }
        }

        func matches(_ origin: Origin?, raw: String) -> Bool {
            switch kind {
            case .anything: return true
            case .literal(let text): return raw == text
            case .exact(let expected): return origin == expected
            case .subdomains(let scheme, let suffix, let port):
                guard let origin else { return false }
                return origin.scheme == scheme && origin.port == port && origin.host.hasSuffix(suffix)
                    && origin.host.count > suffix.count
            }
        }
    }
}
