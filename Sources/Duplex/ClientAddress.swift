import DuplexCore
public import NIOCore

/// An IP network: an address and a prefix length, such as `10.0.0.0/8`, `2001:db8::/32` or a single
/// address (`192.0.2.7`, `::1`).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// The network's address bytes, 4 or 16, with the bits past the prefix cleared.
    private let bytes: [UInt8]
    /// How many leading bits must match.
    public let prefixLength: Int

    /// Parses `address` or `address/prefix`.
    /// - Throws: ``IPNetworkError`` when the address is not an IP address or the prefix is out of
    ///   range for its family.
    public init(_ text: String) throws(IPNetworkError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = try? SocketAddress(ipAddress: String(parts[0]), port: 0),
              let bytes = address.ipBytes
        else { throw .invalidAddress(text) }
        let maximum = bytes.count * 8
        var prefix = maximum
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maximum).contains(value) else { throw .invalidPrefix(text) }
            prefix = value
        }
        self.prefixLength = prefix
        self.bytes = Self.masked(bytes, prefix: prefix)
    }

    /// Whether `address` is in this network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`)
    /// matches the IPv4 network it maps.
    public func contains(_ address: SocketAddress) -> Bool {
        guard var candidate = address.ipBytes else { return false }
        if candidate.count == 16, bytes.count == 4, let v4 = Self.unmapped(candidate) { candidate = v4 }
        guard candidate.count == bytes.count else { return false }
        return Self.masked(candidate, prefix: prefixLength) == bytes
    }

    public var description: String {
        let address = bytes.count == 4 ? bytes.map(String.init).joined(separator: ".")
            : (try? SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: 0).ipAddress) ?? "?"
        return "\(address)/\(prefixLength)"
    }

    /// Loopback and the private ranges (RFC 1918, IPv6 unique local): where a reverse proxy in
    /// front of a server usually sits.
    public static let privateNetworks: [IPNetwork] = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"]
        .map { try! IPNetwork($0) }

    private static func masked(_ bytes: [UInt8], prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(8, max(0, prefix - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF00 >> bits)
        }
    }

    static func unmapped(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return Array(bytes[12..<16])
    }
}

/// Why a string is not an ``IPNetwork``.
public enum IPNetworkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not an IPv4 or IPv6 address.
    case invalidAddress(String)
    /// The prefix length is not a number from 0 to 32 (IPv4) or 128 (IPv6).
    case invalidPrefix(String)

    public var description: String {
        switch self {
        case .invalidAddress(let text): "not an IP address or network: \(text)"
        case .invalidPrefix(let text): "invalid prefix length: \(text)"
        }
    }
}

extension SocketAddress {
    /// The address's bytes: 4 for IPv4, 16 for IPv6, nil for a Unix domain socket.
    var ipBytes: [UInt8]? {
        switch self {
        case .v4(let v4):
            var raw = v4.address.sin_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }
}

/// Finds a request's client address behind trusted reverse proxies.
enum ForwardedClient {
    /// The client address of a request that came from `peer`.
    ///
    /// Unless `peer` is a trusted proxy, it is the client and the headers are ignored (anyone can
    /// write them). Otherwise the hops the proxies appended — `Forwarded` (RFC 7239) if present, else
    /// `X-Forwarded-For` — are walked from the nearest: the first address that is not itself a
    /// trusted proxy is the client. A hop that is not an IP address (`unknown`, an obfuscated
    /// identifier) stops the walk at the last trusted hop before it, the address vouched for.
    static func address(peer: SocketAddress?, headers: HTTPFields, trusted: [IPNetwork]) -> SocketAddress? {
        guard let peer, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let hops: [String]
        let forwarded = headers.values("Forwarded")
        if !forwarded.isEmpty {
            hops = forwarded.flatMap { forwardedFor($0) }
        } else {
            hops = headers.values("X-Forwarded-For").flatMap { $0.split(separator: ",").map { $0.trimmingSpaces } }
        }
        var client = peer
        for hop in hops.reversed() {
            guard let address = parseNode(hop) else { break }
            client = address
            guard trusted.contains(where: { $0.contains(address) }) else { break }
        }
        return client
    }

    /// The `for=` values of a `Forwarded` field value, in order.
    static func forwardedFor(_ value: String) -> [String] {
        value.split(separator: ",").map { element in
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingSpaces.lowercased() == "for" else { continue }
                var node = parts[1].trimmingSpaces
                if node.count >= 2, node.hasPrefix("\""), node.hasSuffix("\"") { node = String(node.dropFirst().dropLast()) }
                return node
            }
            return ""
        }
    }

    /// An IP address from a node: `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:443`
    /// or a bare `2001:db8::1` (as `X-Forwarded-For` writes it); nil for anything else.
    static func parseNode(_ node: String) -> SocketAddress? {
        var host = Substring(node)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return nil }
            host = host[host.index(after: host.startIndex)..<end]
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            host = host[..<colon]
        }
        return try? SocketAddress(ipAddress: String(host), port: 0)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
