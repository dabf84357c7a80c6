/// Why a `Sec-WebSocket-Extensions` header value could not be parsed (RFC 6455 §9.1).
///
/// Offsets count UTF-8 bytes from the start of the offending header value.
public enum ExtensionHeaderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A header value held no extension at all (it was empty, blank or only commas).
    case emptyList(header: String)
    /// An extension name, parameter name or parameter value was expected at `offset`.
    case expectedToken(header: String, offset: Int)
    /// A character that the grammar does not allow there was found at `offset`.
    case unexpectedCharacter(header: String, offset: Int)
    /// A quoted parameter value had no closing quote.
    case unterminatedQuotedString(header: String)
    /// A quoted parameter value was not a token once unquoted, as RFC 6455 §9.1 requires.
    case quotedValueNotToken(header: String, value: String)

    /// A human-readable explanation naming the header value and the problem.
    public var description: String {
        switch self {
        case .emptyList(let header):
            "Sec-WebSocket-Extensions value \"\(header)\" lists no extension"
        case .expectedToken(let header, let offset):
            "Sec-WebSocket-Extensions value \"\(header)\": expected a token at offset \(offset)"
        case .unexpectedCharacter(let header, let offset):
            "Sec-WebSocket-Extensions value \"\(header)\": unexpected character at offset \(offset)"
        case .unterminatedQuotedString(let header):
            "Sec-WebSocket-Extensions value \"\(header)\": unterminated quoted string"
        case .quotedValueNotToken(let header, let value):
            "Sec-WebSocket-Extensions value \"\(header)\": quoted value \"\(value)\" is not a token"
        }
    }
}

/// One WebSocket extension offer or acceptance, as listed in `Sec-WebSocket-Extensions`:
/// a name and its parameters, such as `permessage-deflate; client_max_window_bits=10`.
public struct WebSocketExtension: Sendable, Hashable, CustomStringConvertible {
    /// One extension parameter: a name and an optional value.
    public struct Parameter: Sendable, Hashable {
        /// The parameter's name, a token.
        public var name: String
        /// The parameter's value, unquoted; nil for a parameter given without `=`.
        public var value: String?

        /// Creates a parameter.
        /// - Parameters:
        ///   - name: The name; must be a token.
        ///   - value: The value; defaults to nil (no value).
        public init(name: String, value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    /// The extension's name, a token such as `permessage-deflate`.
    public var name: String
    /// The parameters, in the order given.
    public var parameters: [Parameter]

    /// Creates an extension.
    /// - Parameters:
    ///   - name: The name; must be a token.
    ///   - parameters: The parameters; defaults to none.
    public init(name: String, parameters: [Parameter] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// The first parameter named `name` (compared ASCII case-insensitively), or nil.
    public func parameter(_ name: String) -> Parameter? {
        parameters.first { HTTPGrammar.equalsIgnoringASCIICase($0.name, name) }
    }

    /// This extension as it appears in a header: `name; param; param=value`. Values that are not
    /// tokens are written as quoted strings.
    public var headerValue: String {
        var out = name
        for parameter in parameters {
            out += "; " + parameter.name
            if let value = parameter.value {
                out += "=" + (HTTPGrammar.isToken(value) ? value : Self.quoted(value))
            }
        }
        return out
    }

    /// Same as ``headerValue``.
    public var description: String { headerValue }

    /// Formats `extensions` as one `Sec-WebSocket-Extensions` value: each ``headerValue`` joined by `, `.
    /// Returns the empty string for no extensions.
    public static func format(_ extensions: [WebSocketExtension]) -> String {
        extensions.map(\.headerValue).joined(separator: ", ")
    }

    /// Parses every `Sec-WebSocket-Extensions` header value of a message, in order.
    ///
    /// Implements RFC 6455 §9.1: `extension-list = 1#extension`, `extension = token *( ";" param )`,
    /// `param = token [ "=" ( token | quoted-string ) ]`, where a quoted value must be a token once
    /// unquoted. Optional whitespace is allowed around `,`, `;` and `=`. Empty list elements (as in
    /// `, x`) are ignored, as RFC 9110 §5.6.1 requires of recipients, but each header value must
    /// name at least one extension.
    /// - Parameter headerValues: The values of all `Sec-WebSocket-Extensions` fields; none gives `[]`.
    /// - Returns: The extensions, in order, duplicates kept.
    /// - Throws: ``ExtensionHeaderError`` for the first malformed value.
    public static func parse(_ headerValues: [String]) throws(ExtensionHeaderError) -> [WebSocketExtension] {
        var result: [WebSocketExtension] = []
        for value in headerValues {
            var parser = Parser(header: value)
            result += try parser.parseList()
        }
        return result
    }

    private static func quoted(_ value: String) -> String {
        var out = "\""
        for character in value {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "\""
    }

    /// A recursive-descent parser over one header value's UTF-8 bytes.
    private struct Parser {
        let header: String
        let bytes: [UInt8]
        var index = 0

        init(header: String) {
            self.header = header
            bytes = Array(header.utf8)
        }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func skipOWS() {
            while let byte = current, byte == HTTPGrammar.sp || byte == HTTPGrammar.htab { index += 1 }
        }

        private mutating func token() throws(ExtensionHeaderError) -> String {
            let start = index
            while let byte = current, HTTPGrammar.isTokenByte(byte) { index += 1 }
            guard index > start else { throw .expectedToken(header: header, offset: start) }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        private mutating func quotedString() throws(ExtensionHeaderError) -> String {
            index += 1  // opening quote
            var content: [UInt8] = []
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    let value = String(decoding: content, as: UTF8.self)
                    guard HTTPGrammar.isToken(content) else { throw .quotedValueNotToken(header: header, value: value) }
                    return value
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { throw .unterminatedQuotedString(header: header) }
                    content.append(escaped)
                    index += 1
                default:
                    content.append(byte)
                }
            }
            throw .unterminatedQuotedString(header: header)
        }

        mutating func parseList() throws(ExtensionHeaderError) -> [WebSocketExtension] {
            var extensions: [WebSocketExtension] = []
            while true {
                skipOWS()
                guard let byte = current else { break }
                if byte == UInt8(ascii: ",") {
                    index += 1  // empty list element
                    continue
                }
                extensions.append(try parseExtension())
                skipOWS()
                guard let next = current else { break }
                guard next == UInt8(ascii: ",") else { throw .unexpectedCharacter(header: header, offset: index) }
                index += 1
            }
            guard !extensions.isEmpty else { throw .emptyList(header: header) }
            return extensions
        }

        private mutating func parseExtension() throws(ExtensionHeaderError) -> WebSocketExtension {
            var ext = WebSocketExtension(name: try token())
            while true {
                skipOWS()
                guard current == UInt8(ascii: ";") else { return ext }
                index += 1
                skipOWS()
                var parameter = Parameter(name: try token())
                skipOWS()
                if current == UInt8(ascii: "=") {
                    index += 1
                    skipOWS()
                    parameter.value = current == UInt8(ascii: "\"") ? try quotedString() : try token()
                }
                ext.parameters.append(parameter)
            }
        }
    }
}
