public import NIOCore

/// Why an HTTP/1.x head could not be parsed. Each maps to the status a server answers with.
public enum HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// More than the configured maximum number of bytes arrived without the end of the head.
    case headTooLarge
    /// The request line was not `METHOD SP TARGET SP HTTP/x.y` with a token method and a visible-ASCII target.
    case malformedRequestLine
    /// The status line was not `HTTP/x.y SP 3DIGIT [SP reason]`, or its status code was under 100.
    case malformedStatusLine
    /// A header line was not `name: value` with a token name, or used obsolete line folding,
    /// whitespace before the colon, or a control character in the value.
    case malformedHeader
    /// The version was well formed but not HTTP/1.x.
    case unsupportedVersion

    /// The status a server answers with: 431 for ``headTooLarge``, 505 for ``unsupportedVersion``,
    /// 400 otherwise.
    public var status: Int {
        switch self {
        case .headTooLarge: 431
        case .unsupportedVersion: 505
        case .malformedRequestLine, .malformedStatusLine, .malformedHeader: 400
        }
    }

    /// A human-readable explanation, suitable for a plain-text error body.
    public var reason: String {
        switch self {
        case .headTooLarge: "HTTP head is too large"
        case .malformedRequestLine: "Malformed HTTP request line"
        case .malformedStatusLine: "Malformed HTTP status line"
        case .malformedHeader: "Malformed HTTP header field"
        case .unsupportedVersion: "Only HTTP/1.x is supported"
        }
    }

    /// Same as ``reason``.
    public var description: String { reason }
}

/// An incremental parser of HTTP/1.x request and response heads (start line and header fields; no body).
///
/// Call ``parseRequest(_:)`` or ``parseResponse(_:)`` each time bytes are appended to the same
/// buffer. While the head is incomplete the buffer is left untouched and nil is returned; the parser
/// remembers how far it has scanned, so total work stays linear in the head's size. Once the blank
/// line ending the head has arrived, exactly the head is consumed and any following bytes (such as
/// the first WebSocket frame) are left readable in the buffer.
///
/// Lines end in CRLF; a bare LF is tolerated, a bare CR is not. Parsing is strict in the ways
/// RFC 9112 requires of a server: no whitespace between a field name and its colon, no obsolete line
/// folding, no control characters in values.
public struct HTTPHeadParser: Sendable {
    /// The largest head accepted, in bytes, including its line endings and the final blank line.
    public let maxHeadSize: Int

    /// How many readable bytes of the buffer have been scanned for the end of the head.
    private var scanned = 0

    /// Creates a parser.
    /// - Parameter maxHeadSize: The largest head accepted, in bytes; defaults to 16 KiB. Must be positive.
    public init(maxHeadSize: Int = 16_384) {
        precondition(maxHeadSize > 0, "maxHeadSize must be positive")
        self.maxHeadSize = maxHeadSize
    }

    /// Parses a request head from the front of `buffer`.
    /// - Returns: The head, with its bytes consumed from `buffer`; or nil when more bytes are needed,
    ///   with `buffer` untouched.
    /// - Throws: ``HTTPParseError/headTooLarge`` as soon as more than ``maxHeadSize`` bytes have
    ///   arrived without the end of the head; ``HTTPParseError/malformedRequestLine``,
    ///   ``HTTPParseError/malformedHeader`` or ``HTTPParseError/unsupportedVersion`` for a complete
    ///   but invalid head (whose bytes are then consumed).
    public mutating func parseRequest(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> HTTPRequestHead? {
        guard let lines = try nextHead(&buffer) else { return nil }
        // method SP request-target SP HTTP-version: exactly two spaces.
        let line = lines.startLine
        guard let firstSpace = line.firstIndex(of: HTTPGrammar.sp),
              let secondSpace = line[(firstSpace + 1)...].firstIndex(of: HTTPGrammar.sp),
              !line[(secondSpace + 1)...].contains(HTTPGrammar.sp)
        else { throw .malformedRequestLine }
        let method = line[..<firstSpace], target = line[(firstSpace + 1)..<secondSpace]
        guard HTTPGrammar.isToken(method), !target.isEmpty, target.allSatisfy({ (0x21...0x7E).contains($0) })
        else { throw .malformedRequestLine }
        guard let version = Self.parseVersion(line[(secondSpace + 1)...]) else { throw .malformedRequestLine }
        guard version.major == 1 else { throw .unsupportedVersion }
        return HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            version: version, headers: try Self.parseFields(of: lines))
    }

    /// Parses a response head from the front of `buffer`.
    /// - Returns: The head, with its bytes consumed from `buffer`; or nil when more bytes are needed,
    ///   with `buffer` untouched.
    /// - Throws: ``HTTPParseError/headTooLarge`` as soon as more than ``maxHeadSize`` bytes have
    ///   arrived without the end of the head; ``HTTPParseError/malformedStatusLine``,
    ///   ``HTTPParseError/malformedHeader`` or ``HTTPParseError/unsupportedVersion`` for a complete
    ///   but invalid head (whose bytes are then consumed).
    public mutating func parseResponse(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> HTTPResponseHead? {
        guard let lines = try nextHead(&buffer) else { return nil }
        let line = lines.startLine
        // "HTTP/x.y" SP 3DIGIT [ SP reason-phrase ]
        guard line.count >= 12, line[line.startIndex + 8] == HTTPGrammar.sp,
              let version = Self.parseVersion(line.prefix(8))
        else { throw .malformedStatusLine }
        let code = line.dropFirst(9).prefix(3)
        guard code.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { throw .malformedStatusLine }
        let status = code.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        // RFC 9110 §15: codes start at 100; "050" is no status, and would be written back as "50".
        guard status >= 100 else { throw .malformedStatusLine }
        var reason = line.dropFirst(12)
        if let first = reason.first {
            guard first == HTTPGrammar.sp else { throw .malformedStatusLine }
            reason = reason.dropFirst()
        }
        guard reason.allSatisfy(Self.isFieldValueByte) else { throw .malformedStatusLine }
        guard version.major == 1 else { throw .unsupportedVersion }
        return HTTPResponseHead(
            version: version, status: status, reason: String(decoding: reason, as: UTF8.self),
            headers: try Self.parseFields(of: lines))
    }

    // MARK: Framing

    private struct Lines {
        /// The whole head, through the LF of its blank line.
        var head: [UInt8]
        /// The start line, without its line ending.
        var startLine: ArraySlice<UInt8>
        /// Where the field lines begin in `head`.
        var fieldsStart: Int
    }

    /// Finds the end of the head; when found, consumes it and finds its start line.
    private mutating func nextHead(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Lines? {
        let limit = min(buffer.readableBytes, maxHeadSize)
        let start = min(scanned, limit)
        let headLength: Int? = buffer.withUnsafeReadableBytes { bytes in
            var index = start
            while index < limit {
                if bytes[index] == HTTPGrammar.lf && index >= 1 {
                    if bytes[index - 1] == HTTPGrammar.lf { return index + 1 }
                    if index >= 2 && bytes[index - 1] == HTTPGrammar.cr && bytes[index - 2] == HTTPGrammar.lf {
                        return index + 1
                    }
                }
                index += 1
            }
            return nil
        }
        guard let headLength else {
            guard buffer.readableBytes <= maxHeadSize else {
                scanned = 0
                throw .headTooLarge
            }
            scanned = limit
            return nil
        }
        scanned = 0
        // The scan never looks past maxHeadSize bytes, so the head fits.
        let head = buffer.readBytes(length: headLength)!
        // The head holds at least two LFs, so the start line ends at one; a stray CR in it fails its
        // own validation. The field lines are split as they are parsed, without an array of lines.
        let startEnd = head.firstIndex(of: HTTPGrammar.lf)!
        let startLine = startEnd > 0 && head[startEnd - 1] == HTTPGrammar.cr ? head[..<(startEnd - 1)] : head[..<startEnd]
        return Lines(head: head, startLine: startLine, fieldsStart: startEnd + 1)
    }

    // MARK: Pieces

    /// Parses exactly `HTTP/DIGIT.DIGIT`.
    private static func parseVersion(_ bytes: ArraySlice<UInt8>) -> HTTPVersion? {
        guard bytes.count == 8, bytes.starts(with: "HTTP/".utf8) else { return nil }
        let major = bytes[bytes.startIndex + 5], dot = bytes[bytes.startIndex + 6], minor = bytes[bytes.startIndex + 7]
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard digits.contains(major), dot == UInt8(ascii: "."), digits.contains(minor) else { return nil }
        return HTTPVersion(major: Int(major - UInt8(ascii: "0")), minor: Int(minor - UInt8(ascii: "0")))
    }

    /// HTAB, SP, VCHAR and obs-text: any byte but the other controls and DEL.
    private static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == HTTPGrammar.htab || (byte >= 0x20 && byte != 0x7F)
    }

    /// The field lines of `lines`, up to the blank line that ends the head.
    private static func parseFields(of lines: Lines) throws(HTTPParseError) -> HTTPFields {
        let parsed = lines.head.withUnsafeBufferPointer { head in
            Result { () throws(HTTPParseError) -> HTTPFields in
                // One field per LF after the start line, but for the blank line's: sized exactly, as
                // a connection keeps its request.
                var newlines = 0
                for byte in head[lines.fieldsStart...] where byte == HTTPGrammar.lf { newlines += 1 }
                var fields = HTTPFields(minimumCapacity: newlines - 1)
                var lineStart = lines.fieldsStart
                while true {
                    // The head ends with its blank line's LF, so every line has one.
                    var lineEnd = lineStart
                    while head[lineEnd] != HTTPGrammar.lf { lineEnd += 1 }
                    let next = lineEnd + 1
                    if lineEnd > lineStart && head[lineEnd - 1] == HTTPGrammar.cr { lineEnd -= 1 }
                    // The first empty line is the blank line: the scan stopped at the first one.
                    if lineEnd == lineStart { return fields }
                    try parseField(UnsafeBufferPointer(rebasing: head[lineStart..<lineEnd]), into: &fields)
                    lineStart = next
                }
            }
        }
        return try parsed.get()
    }

    private static func parseField(_ line: UnsafeBufferPointer<UInt8>, into fields: inout HTTPFields) throws(HTTPParseError) {
        // A line starting with whitespace is obsolete line folding.
        guard let colon = line.firstIndex(of: HTTPGrammar.colon) else { throw .malformedHeader }
        let name = line[..<colon]
        guard HTTPGrammar.isToken(name) else { throw .malformedHeader }
        var value = line[line.index(after: colon)...]
        while let first = value.first, first == HTTPGrammar.sp || first == HTTPGrammar.htab { value = value.dropFirst() }
        while let last = value.last, last == HTTPGrammar.sp || last == HTTPGrammar.htab { value = value.dropLast() }
        guard value.allSatisfy(isFieldValueByte) else { throw .malformedHeader }
        fields.add(String(decoding: UnsafeBufferPointer(rebasing: name), as: UTF8.self),
                   String(decoding: UnsafeBufferPointer(rebasing: value), as: UTF8.self))
    }
}
