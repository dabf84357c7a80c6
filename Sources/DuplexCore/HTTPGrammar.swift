/// Byte-level helpers shared by the HTTP head parser, the header model and the handshake.
enum HTTPGrammar {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    /// Whether `byte` is a `tchar` (RFC 9110 §5.6.2).
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Whether `bytes` is a non-empty `token`.
    static func isToken(_ bytes: some Collection<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy(isTokenByte)
    }

    /// Whether `string` is a non-empty `token`.
    static func isToken(_ string: String) -> Bool {
        isToken(string.utf8)
    }

    @inline(__always)
    static func lowercasedASCII(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    /// Compares two strings byte by byte, folding ASCII letters only (header names and tokens are ASCII).
    static func equalsIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        // Over the strings' contiguous UTF-8 when both have it (native strings do): the handshake
        // looks up half a dozen fields by name in every request.
        let contiguous = x.withContiguousStorageIfAvailable { x in
            y.withContiguousStorageIfAvailable { y in equalsIgnoringASCIICase(x, y) }
        }
        if let contiguous, let equal = contiguous { return equal }
        return zip(x, y).allSatisfy { lowercasedASCII($0) == lowercasedASCII($1) }
    }

    /// Compares two byte strings of the same length, folding ASCII letters only.
    @inline(__always)
    private static func equalsIgnoringASCIICase(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        for index in 0..<x.count where x[index] != y[index] {
            // Bytes that differ match only as the two cases of one letter, which differ in bit 5.
            let folded = x[index] | 0x20
            guard x[index] ^ y[index] == 0x20, folded >= UInt8(ascii: "a"), folded <= UInt8(ascii: "z") else { return false }
        }
        return true
    }

    /// `string` with ASCII letters lowercased.
    static func asciiLowercased(_ string: String) -> String {
        String(decoding: string.utf8.map(lowercasedASCII), as: UTF8.self)
    }

    /// Whether the comma-separated `list` has an element equal to `token`, ASCII case-insensitively,
    /// once trimmed of spaces and tabs; without allocating (the handshake asks this of every request).
    static func list(_ list: UnsafeBufferPointer<UInt8>, containsToken token: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !token.isEmpty else { return false }
        var start = 0
        while start <= list.count {
            var end = start
            while end < list.count, list[end] != UInt8(ascii: ",") { end += 1 }
            var first = start, last = end
            while first < last, list[first] == sp || list[first] == htab { first += 1 }
            while last > first, list[last - 1] == sp || list[last - 1] == htab { last -= 1 }
            if last - first == token.count,
               (0..<token.count).allSatisfy({ lowercasedASCII(list[first + $0]) == lowercasedASCII(token[$0]) }) {
                return true
            }
            start = end + 1
        }
        return false
    }

    /// `string` without leading and trailing spaces and horizontal tabs.
    static func trimmingOWS(_ string: Substring) -> Substring {
        var s = string
        while let first = s.utf8.first, first == sp || first == htab { s = s.dropFirst() }
        while let last = s.utf8.last, last == sp || last == htab { s = s.dropLast() }
        return s
    }

    /// The standard reason phrase for `status`, or "Unknown" when there is none.
    static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 423: "Locked"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 507: "Insufficient Storage"
        case 511: "Network Authentication Required"
        default: "Unknown"
        }
    }
}

/// Standard base64 (RFC 4648 §4) with mandatory padding.
package enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    package static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Array(bytes).withUnsafeBytes { encode($0) }
    }

    /// Encodes `input` straight into the string's storage (a handshake's accept value, say).
    package static func encode(_ input: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: (input.count + 2) / 3 * 4) { out in
            var o = 0
            func put(_ n: UInt32, _ shift: UInt32) {
                out[o] = alphabet[Int(n >> shift & 63)]
                o += 1
            }
            var i = 0
            while i + 3 <= input.count {
                let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                put(n, 18)
                put(n, 12)
                put(n, 6)
                put(n, 0)
                i += 3
            }
            let rest = input.count - i
            if rest > 0 {
                let n = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                put(n, 18)
                put(n, 12)
                if rest == 2 {
                    put(n, 6)
                } else {
                    out[o] = UInt8(ascii: "=")
                    o += 1
                }
                out[o] = UInt8(ascii: "=")
                o += 1
            }
            return o
        }
    }

    private static func value(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(c - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(c - UInt8(ascii: "a") + 26)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0") + 52)
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    /// Decodes canonical padded base64; nil for anything else (bad length, characters, padding or
    /// non-zero trailing bits).
    package static func decode(_ string: String) -> [UInt8]? {
        var string = string
        return string.withUTF8 { input -> [UInt8]? in
            guard input.count % 4 == 0 else { return nil }
            var out: [UInt8] = []
            out.reserveCapacity(input.count / 4 * 3)
            var i = 0
            while i < input.count {
                // Padding only at the very end, at most two; a "=" anywhere else is no base64 value.
                var pad = 0
                if i + 4 == input.count, input[i + 3] == UInt8(ascii: "=") {
                    pad = input[i + 2] == UInt8(ascii: "=") ? 2 : 1
                }
                var n: UInt32 = 0
                for k in 0..<4 {
                    if k >= 4 - pad {
                        n <<= 6
                    } else {
                        guard let v = value(input[i + k]) else { return nil }
                        n = n << 6 | v
                    }
                }
                switch pad {
                case 0:
                    out.append(UInt8(n >> 16 & 0xFF))
                    out.append(UInt8(n >> 8 & 0xFF))
                    out.append(UInt8(n & 0xFF))
                case 1:
                    guard n & 0xFF == 0 else { return nil }
                    out.append(UInt8(n >> 16 & 0xFF))
                    out.append(UInt8(n >> 8 & 0xFF))
                default:
                    guard n & 0xFFFF == 0 else { return nil }
                    out.append(UInt8(n >> 16 & 0xFF))
                }
                i += 4
            }
            return out
        }
    }
}
