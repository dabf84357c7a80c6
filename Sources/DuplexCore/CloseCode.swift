/// A close status code (RFC 6455 §7.4 and the IANA registry).
///
/// Any 16-bit value can be represented so that a code received from a peer can be reported, but only
/// ``isValidOnWire`` codes may be sent or accepted in a close frame.
public struct CloseCode: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    /// The numeric code.
    public var rawValue: UInt16

    /// Creates a close code from its number.
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Creates a close code from an integer literal, as in `let code: CloseCode = 4000`.
    @inlinable public init(integerLiteral value: UInt16) { self.rawValue = value }

    /// 1000: the purpose of the connection was fulfilled.
    public static let normalClosure: CloseCode = 1000
    /// 1001: the endpoint is going away (a server shutting down, a page navigated away from).
    public static let goingAway: CloseCode = 1001
    /// 1002: the peer broke the protocol.
    public static let protocolError: CloseCode = 1002
    /// 1003: the peer sent a type of data this endpoint cannot accept.
    public static let unsupportedData: CloseCode = 1003
    /// 1005: no status code was present in the close frame. Never sent on the wire.
    public static let noStatusReceived: CloseCode = 1005
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    public static let abnormalClosure: CloseCode = 1006
    /// 1007: a message's data was inconsistent with its type (invalid UTF-8 in a text message).
    public static let invalidPayload: CloseCode = 1007
    /// 1008: a message violated the endpoint's policy.
    public static let policyViolation: CloseCode = 1008
    /// 1009: a message was too big to process.
    public static let messageTooBig: CloseCode = 1009
    /// 1010: the client expected the server to negotiate an extension it did not.
    public static let mandatoryExtension: CloseCode = 1010
    /// 1011: the server met an unexpected condition.
    public static let internalError: CloseCode = 1011
    /// 1012: the service is restarting.
    public static let serviceRestart: CloseCode = 1012
    /// 1013: try again later (a temporary overload).
    public static let tryAgainLater: CloseCode = 1013
    /// 1014: a gateway received an invalid response upstream.
    public static let badGateway: CloseCode = 1014
    /// 1015: the TLS handshake failed. Never sent on the wire.
    public static let tlsHandshakeFailure: CloseCode = 1015

    /// Whether this code may appear in a close frame: the registered codes 1000-1003 and 1007-1014, and
    /// the codes 3000-4999 left to libraries, frameworks and applications. 1004, 1005, 1006, 1015, the
    /// unregistered rest of 1000-2999, and everything below 1000 or above 4999 may not.
    @inlinable
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// A short name for the registered codes, the number for the others.
    public var description: String {
        let name: String? = switch rawValue {
        case 1000: "normal closure"
        case 1001: "going away"
        case 1002: "protocol error"
        case 1003: "unsupported data"
        case 1005: "no status received"
        case 1006: "abnormal closure"
        case 1007: "invalid payload data"
        case 1008: "policy violation"
        case 1009: "message too big"
        case 1010: "mandatory extension"
        case 1011: "internal error"
        case 1012: "service restart"
        case 1013: "try again later"
        case 1014: "bad gateway"
        case 1015: "TLS handshake failure"
        default: nil
        }
        return name.map { "\(rawValue) (\($0))" } ?? "\(rawValue)"
    }
}
