#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore

/// Keeping a connection alive and noticing when the peer is gone: a cable pulled, a laptop asleep,
/// a frozen process. TCP alone can take hours to notice.
///
/// Every ``pingInterval`` this end sends a ping — a protocol ping frame, or an application message
/// (``style``) for peers that cannot send or see protocol pings, as JavaScript in a browser cannot.
/// If nothing at all arrives from the peer within ``pingTimeout`` of the ping, the connection is
/// closed: a close frame 1011 "ping timeout" for a peer that may still read it, and the connection
/// ends at once with that code and `wasClean` false.
///
/// Independently, ``answering`` makes this end answer the peer's application pings (a server for
/// browser clients): such a message is answered at once and not delivered to the application.
/// Protocol pings are always answered, as RFC 6455 requires.
public struct Heartbeat: Sendable {
    /// What a ping is.
    public enum Style: Sendable {
        /// A ping frame (opcode 0x9); the peer's WebSocket stack answers with a pong.
        case protocolPing
        /// An application message in the given format; the peer's application answers.
        case application(ApplicationHeartbeat)
    }

    /// How often to ping; nil (the default) sends none.
    public var pingInterval: TimeAmount?
    /// How long after a ping the peer has to show life (any frame, the pong included). Default 10 s.
    public var pingTimeout: TimeAmount
    /// What the pings are. Default ``Style/protocolPing``.
    public var style: Style
    /// The application pings this end answers, or nil (the default) to deliver them like any message.
    public var answering: ApplicationHeartbeat?

    /// Creates a heartbeat; the defaults send nothing and answer only protocol pings.
    public init(pingInterval: TimeAmount? = nil, pingTimeout: TimeAmount = .seconds(10), style: Style = .protocolPing,
                answering: ApplicationHeartbeat? = nil) {
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.style = style
        self.answering = answering
    }

    /// No pings sent, only protocol pings answered.
    public static let none = Heartbeat()
}

/// The shape of application-level pings and pongs: text messages that carry a value (by default
/// the sender's clock in milliseconds), which the pong echoes.
public struct ApplicationHeartbeat: Sendable {
    /// The ping message for a value.
    public var makePing: @Sendable (String) -> String
    /// The value of a message that is a ping, or nil for any other message.
    public var pingValue: @Sendable (String) -> String?
    /// The pong message answering a ping's value.
    public var makePong: @Sendable (String) -> String
    /// The value of a message that is a pong, or nil for any other message.
    public var pongValue: @Sendable (String) -> String?

    /// Creates a format from its four functions.
    public init(makePing: @escaping @Sendable (String) -> String, pingValue: @escaping @Sendable (String) -> String?,
                makePong: @escaping @Sendable (String) -> String, pongValue: @escaping @Sendable (String) -> String?) {
        self.makePing = makePing
        self.pingValue = pingValue
        self.makePong = makePong
        self.pongValue = pongValue
    }

    /// `{"type":"ping","value":1584622155785}` answered by `{"pong":"1584622155785"}`. A ping's
    /// value may be a number or a string; the pong carries it as a string. Other members are
    /// ignored; anything that is not such an object is an ordinary message.
    public static let json = ApplicationHeartbeat(
        makePing: { #"{"type":"ping","value":\#($0)}"# },
        pingValue: { text in
            guard let object = FlatJSON.object(text), object["type"] == .string("ping") else { return nil }
            switch object["value"] {
            case .string(let value), .number(let value): return value
            default: return nil
            }
        },
        makePong: { #"{"pong":"\#(FlatJSON.escaped($0))"}"# },
        pongValue: { text in
            guard let object = FlatJSON.object(text), case .string(let value) = object["pong"] else { return nil }
            return value
        })

    /// Milliseconds since 1970, the value a browser's `Date.now()` gives.
    static func nowMilliseconds() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return String(Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }
}

/// Just enough JSON for heartbeat messages: one object whose members are strings, numbers,
/// booleans or null. Nested values make it "not a heartbeat", not an error.
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case number(String)
        case other
    }

    static func object(_ text: String) -> [String: Value]? {
        var scanner = Scanner(Array(text.utf8))
        return scanner.object()
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func object() -> [String: Value]? {
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var members: [String: Value] = [:]
            skipSpace()
            if take(UInt8(ascii: "}")) { return finished(members) }
            repeat {
                skipSpace()
                guard let key = string() else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                guard let value = value() else { return nil }
                members[key] = value
                skipSpace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return nil }
            return finished(members)
        }

        private mutating func finished(_ members: [String: Value]) -> [String: Value]? {
            skipSpace()
            return index == bytes.count ? members : nil
        }

        private mutating func value() -> Value? {
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number().map(Value.number)
            default:
                for literal in ["true", "false", "null"] where bytes[index...].starts(with: literal.utf8) {
                    index += literal.utf8.count
                    return .other
                }
                return nil
            }
        }

        private mutating func number() -> String? {
            let start = index
            while index < bytes.count, "-+.eE0123456789".utf8.contains(bytes[index]) { index += 1 }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            return Double(text) != nil ? text : nil
        }

        private mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    let simple: [UInt8: UInt8] = [
                        UInt8(ascii: "\""): UInt8(ascii: "\""), UInt8(ascii: "\\"): UInt8(ascii: "\\"), UInt8(ascii: "/"): UInt8(ascii: "/"),
                        UInt8(ascii: "b"): 8, UInt8(ascii: "f"): 12, UInt8(ascii: "n"): 10, UInt8(ascii: "r"): 13, UInt8(ascii: "t"): 9,
                    ]
                    if let replacement = simple[escape] {
                        raw.append(replacement)
                    } else if escape == UInt8(ascii: "u"), index + 4 <= bytes.count,
                              let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) {
                        index += 4
                        flush()
                        scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    } else {
                        return nil
                    }
                case 0..<0x20:
                    return nil
                default:
                    raw.append(byte)
                }
            }
            return nil
        }

        private mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
    }
}
