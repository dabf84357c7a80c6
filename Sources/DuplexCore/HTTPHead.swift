public import NIOCore

/// An HTTP protocol version, such as HTTP/1.1.
public struct HTTPVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The major version: 1 in HTTP/1.1.
    public var major: Int
    /// The minor version: 1 in HTTP/1.1.
    public var minor: Int

    /// Creates a version from its two numbers.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0.
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1, the only version a WebSocket opening handshake may use.
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    /// Orders versions by major, then minor number.
    public static func < (lhs: HTTPVersion, rhs: HTTPVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    /// The version as it appears on the wire, such as `HTTP/1.1`.
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// The head of an HTTP/1.x request: request line and header fields, without a body.
public struct HTTPRequestHead: Sendable, Hashable {
    /// The method, such as `GET`. Case-sensitive.
    public var method: String
    /// The request target as sent, usually a path and query such as `/chat?room=1`.
    public var target: String
    /// The protocol version.
    public var version: HTTPVersion
    /// The header fields, in order.
    public var headers: HTTPFields

    /// Creates a request head.
    /// - Parameters:
    ///   - method: The method; defaults to `GET`.
    ///   - target: The request target; defaults to `/`.
    ///   - version: The version; defaults to HTTP/1.1.
    ///   - headers: The header fields; defaults to none.
    public init(method: String = "GET", target: String = "/", version: HTTPVersion = .http1_1, headers: HTTPFields = [:]) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// Writes the request line, each header field and the terminating blank line, all with CRLF
    /// line endings. Nothing is validated: callers must supply a valid method, target and fields.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeString("\(method) \(target) \(version)\r\n")
        writeFields(headers, into: &buffer)
    }
}

/// The head of an HTTP/1.x response: status line and header fields, without a body.
public struct HTTPResponseHead: Sendable, Hashable {
    /// The protocol version.
    public var version: HTTPVersion
    /// The status code, such as 101.
    public var status: Int
    /// The reason phrase, such as `Switching Protocols`. May be empty.
    public var reason: String
    /// The header fields, in order.
    public var headers: HTTPFields

    /// Creates a response head.
    /// - Parameters:
    ///   - version: The version; defaults to HTTP/1.1.
    ///   - status: The status code.
    ///   - reason: The reason phrase; nil (the default) uses the standard phrase for `status`.
    ///   - headers: The header fields; defaults to none.
    public init(version: HTTPVersion = .http1_1, status: Int, reason: String? = nil, headers: HTTPFields = [:]) {
        self.version = version
        self.status = status
        self.reason = reason ?? HTTPGrammar.reasonPhrase(for: status)
        self.headers = headers
    }

    /// Writes the status line, each header field and the terminating blank line, all with CRLF
    /// line endings. Nothing is validated: callers must supply a valid reason and fields.
    public func write(into buffer: inout ByteBuffer) {
        // Without string interpolation in the common case (HTTP/1.1, a three-digit status): a
        // server writes this for every handshake.
        if version == .http1_1 {
            buffer.writeStaticString("HTTP/1.1 ")
        } else {
            buffer.writeString(version.description)
            buffer.writeInteger(HTTPGrammar.sp)
        }
        if (100...999).contains(status) {
            let digits = (UInt8(status / 100), UInt8(status / 10 % 10), UInt8(status % 10))
            buffer.writeMultipleIntegers(digits.0 + 0x30, digits.1 + 0x30, digits.2 + 0x30, HTTPGrammar.sp)
        } else {
            buffer.writeString(String(status))
            buffer.writeInteger(HTTPGrammar.sp)
        }
        buffer.writeString(reason)
        buffer.writeStaticString("\r\n")
        writeFields(headers, into: &buffer)
    }
}

private func writeFields(_ headers: HTTPFields, into buffer: inout ByteBuffer) {
    for (name, value) in headers {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }
    buffer.writeStaticString("\r\n")
}
