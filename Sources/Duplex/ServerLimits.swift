public import NIOCore
import NIOConcurrencyHelpers

/// A token bucket: `perSecond` tokens refill continuously up to `burst`.
public struct RateLimit: Sendable, Hashable {
    /// Tokens added per second.
    public var perSecond: Double
    /// The most tokens held: what may be spent at once after a quiet period.
    public var burst: Double

    /// Creates a limit of `perSecond` with a bucket of `burst` (default: two seconds' worth).
    public init(perSecond: Double, burst: Double? = nil) {
        self.perSecond = perSecond
        self.burst = burst ?? perSecond * 2
    }
}

/// The limits a server applies against denial of service. Each has a default meant for a public
/// server; `.init()` gives them all.
public struct ServerLimits: Sendable {
    /// Open connections in all, including those in their opening handshake. Beyond it a request
    /// gets 503 with `Retry-After`. Default 10,000.
    public var maxConnections: Int
    /// Open connections from one client address (IPv4 address, or IPv6 /64 prefix), including
    /// those in their handshake. Beyond it a request gets 429 with `Retry-After`. Default 256.
    public var maxConnectionsPerAddress: Int
    /// The `Retry-After` sent with 503 and 429. Default 10 seconds.
    public var retryAfter: TimeAmount
    /// Messages a connection may send, per second; beyond it the server closes with 1008 and
    /// "message rate exceeded". Default 1,000 per second with bursts of 2,000. nil: no limit.
    public var messageRate: RateLimit?
    /// Message bytes a connection may send, per second; beyond it the server closes with 1008 and
    /// "byte rate exceeded". Default nil (the message size limit bounds each message already).
    public var byteRate: RateLimit?
    /// The most bytes queued for a connection and not yet taken by its socket. A peer that reads
    /// too slowly for what the application sends is closed with 1008 "slow consumer" when a send
    /// would pass it, instead of the server's memory growing. Writes give the application
    /// backpressure long before (the async writer waits, `whenWritable` tells). Default 16 MiB.
    public var maxBufferedBytes: Int
    /// How long a connection may go without receiving anything before the server closes it with
    /// 1001 "idle timeout". Default nil: WebSocket connections are often quiet for long; turn on
    /// heartbeats or set this when dead peers must be found.
    public var idleTimeout: TimeAmount?

    /// Creates limits; every parameter has the documented default.
    public init(maxConnections: Int = 10_000, maxConnectionsPerAddress: Int = 256, retryAfter: TimeAmount = .seconds(10),
                messageRate: RateLimit? = RateLimit(perSecond: 1_000), byteRate: RateLimit? = nil,
                maxBufferedBytes: Int = 16 << 20, idleTimeout: TimeAmount? = nil) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.retryAfter = retryAfter
        self.messageRate = messageRate
        self.byteRate = byteRate
        self.maxBufferedBytes = maxBufferedBytes
        self.idleTimeout = idleTimeout
    }
}

/// A token bucket's state, advanced with the time passed in.
struct TokenBucket {
    let limit: RateLimit
    private var tokens: Double
    private var updated: NIODeadline

    init(_ limit: RateLimit, now: NIODeadline) {
        self.limit = limit
        tokens = limit.burst
        updated = now
    }

    /// Spends `cost` tokens if there are enough; returns whether there were.
    mutating func spend(_ cost: Double, now: NIODeadline) -> Bool {
        let elapsed = Double((now - updated).nanoseconds) / 1e9
        if elapsed > 0 {
            tokens = min(limit.burst, tokens + elapsed * limit.perSecond)
            updated = now
        }
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }
}

/// The client address a per-address limit counts: an IPv4 address, or the /64 prefix of an IPv6
/// address (one subscriber usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
struct ClientAddressKey: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address in the low 32 bits, or the first 64 bits of an IPv6 one. (Two words: made
    /// for every connection, it allocates nothing.)
    private let value: UInt64
    private let isIPv4: Bool

    init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4):
            value = UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr))
            isIPv4 = true
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &raw) {
                (UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            // An IPv4-mapped address (::ffff:a.b.c.d) counts as its IPv4 address.
            if high == 0 && low >> 32 == 0xFFFF {
                value = low & 0xFFFF_FFFF
                isIPv4 = true
            } else {
                value = high
                isIPv4 = false
            }
        case .unixDomainSocket, nil:
            return nil
        }
    }

    var description: String {
        isIPv4 ? "\(value >> 24 & 0xFF).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
            : stride(from: 48, through: 0, by: -16).map { String(value >> UInt64($0) & 0xFFFF, radix: 16) }
                .joined(separator: ":") + "::/64"
    }
}

/// Counts a server's connections, in all and per client address, and decides admission.
final class ConnectionCounter: Sendable {
    enum Admission: Equatable {
        case admitted
        case serverFull
        case addressFull(ClientAddressKey)
    }

    private struct Counts {
        var total = 0
        var perAddress: [ClientAddressKey: Int] = [:]
    }

    private let counts = NIOLockedValueBox(Counts())
    let limits: ServerLimits

    init(limits: ServerLimits) { self.limits = limits }

    /// Counts a new connection if the limits allow it: in all, and for `key` unless nil (a trusted
    /// proxy's connection, counted by ``admitAddress(_:)`` once its client is known). An admitted
    /// connection must be released once, with the same key.
    func admit(_ key: ClientAddressKey?) -> Admission {
        counts.withLockedValue { counts in
            guard counts.total < limits.maxConnections else { return .serverFull }
            if let key {
                guard Self.add(key, to: &counts, limit: limits.maxConnectionsPerAddress) else { return .addressFull(key) }
            }
            counts.total += 1
            return .admitted
        }
    }

    /// Counts an admitted connection for `key` too, if that address is under its limit; one that
    /// was counted must be released with ``releaseAddress(_:)``.
    func admitAddress(_ key: ClientAddressKey) -> Bool {
        counts.withLockedValue { Self.add(key, to: &$0, limit: limits.maxConnectionsPerAddress) }
    }

    func release(_ key: ClientAddressKey?) {
        counts.withLockedValue { counts in
            counts.total -= 1
            if let key { Self.remove(key, from: &counts) }
        }
    }

    func releaseAddress(_ key: ClientAddressKey) {
        counts.withLockedValue { Self.remove(key, from: &$0) }
    }

    /// The connections open from `key` now.
    func count(for key: ClientAddressKey?) -> Int {
        guard let key else { return 0 }
        return counts.withLockedValue { $0.perAddress[key, default: 0] }
    }

    private static func add(_ key: ClientAddressKey, to counts: inout Counts, limit: Int) -> Bool {
        let current = counts.perAddress[key, default: 0]
        guard current < limit else { return false }
        counts.perAddress[key] = current + 1
        return true
    }

    private static func remove(_ key: ClientAddressKey, from counts: inout Counts) {
        let remaining = counts.perAddress[key, default: 1] - 1
        counts.perAddress[key] = remaining > 0 ? remaining : nil
    }
}
