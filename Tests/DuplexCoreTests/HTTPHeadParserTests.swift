import DuplexCore
import NIOCore
import Testing

@Suite struct HTTPHeadParserTests {
    static let request = "GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nX-Empty:\r\n\r\n"

    @Test func parsesCompleteRequest() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: Self.request)
        let head = try #require(try parser.parseRequest(&buffer))
        #expect(head.method == "GET")
        #expect(head.target == "/chat?x=1")
        #expect(head.version == .http1_1)
        #expect(head.headers["host"] == "example.com")
        #expect(head.headers["X-EMPTY"] == "")
        #expect(head.headers.count == 3)
        #expect(buffer.readableBytes == 0)
    }

    @Test func leavesBytesAfterTheHead() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: Self.request)
        buffer.writeBytes([0x81, 0x85, 1, 2, 3, 4])
        _ = try #require(try parser.parseRequest(&buffer))
        #expect(buffer.readableBytesView.elementsEqual([0x81, 0x85, 1, 2, 3, 4]))
    }

    @Test func byteByByte() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer()
        let bytes = Array(Self.request.utf8) + [0x88, 0x00]
        var result: HTTPRequestHead?
        for (index, byte) in bytes.enumerated() {
            buffer.writeInteger(byte)
            if let head = try parser.parseRequest(&buffer) {
                #expect(index == Self.request.utf8.count - 1)
                result = head
                break
            }
            #expect(buffer.readableBytes == index + 1)
        }
        #expect(result?.headers["Upgrade"] == "websocket")
        #expect(buffer.readableBytes == 0)
        buffer.writeBytes([0x88, 0x00])
        #expect(buffer.readableBytes == 2)
    }

    @Test(arguments: [1, 2, 3, 5, 7, 16, 64])
    func inChunks(size: Int) throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer()
        let bytes = Array(Self.request.utf8) + Array("tail".utf8)
        var head: HTTPRequestHead?
        var offset = 0
        while head == nil, offset < bytes.count {
            buffer.writeBytes(bytes[offset..<min(offset + size, bytes.count)])
            offset += size
            head = try parser.parseRequest(&buffer)
        }
        #expect(head?.target == "/chat?x=1")
        // Whatever followed the head in the last chunk stays unread.
        #expect(buffer.readableBytesView.elementsEqual(bytes[Self.request.utf8.count..<min(offset, bytes.count)]))
    }

    @Test func parserIsReusableAfterAHead() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: a")
        #expect(try parser.parseRequest(&buffer) == nil)
        buffer.writeString("\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n")
        #expect(try parser.parseRequest(&buffer)?.target == "/a")
        #expect(try parser.parseRequest(&buffer)?.target == "/b")
    }

    @Test func toleratesBareLF() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\nHost: x\nA: b\r\n\nrest")
        let head = try #require(try parser.parseRequest(&buffer))
        #expect(head.headers["a"] == "b")
        #expect(buffer.readableBytes == 4)
    }

    @Test func trimsOptionalWhitespace() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost:\t  example.com \t\r\nX:  a  b  \r\n\r\n")
        let head = try #require(try parser.parseRequest(&buffer))
        #expect(head.headers["Host"] == "example.com")
        #expect(head.headers["X"] == "a  b")
    }

    @Test func headTooLarge() throws {
        var parser = HTTPHeadParser(maxHeadSize: 64)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        #expect(try parser.parseRequest(&buffer) == nil)
        buffer.writeString(String(repeating: "a", count: 48))  // exactly 64 bytes: may still end
        #expect(try parser.parseRequest(&buffer) == nil)
        buffer.writeString("a")
        #expect(throws: HTTPParseError.headTooLarge) { try parser.parseRequest(&buffer) }
        #expect(HTTPParseError.headTooLarge.status == 431)
    }

    @Test func headExactlyAtLimitIsAccepted() throws {
        let head = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        var parser = HTTPHeadParser(maxHeadSize: head.utf8.count)
        var buffer = ByteBuffer(string: head + "extra bytes beyond the limit")
        #expect(try parser.parseRequest(&buffer) != nil)
        var small = HTTPHeadParser(maxHeadSize: head.utf8.count - 1)
        var again = ByteBuffer(string: head)
        #expect(throws: HTTPParseError.headTooLarge) { try small.parseRequest(&again) }
    }

    @Test(arguments: [
        "GET /  HTTP/1.1",  // two spaces
        "GET / HTTP/1.1 ",  // trailing space
        "GET /",  // no version
        "GET",  // method only
        "",  // empty line
        "G(T / HTTP/1.1",  // non-token method
        "GET / HTTP/1",  // bad version
        "GET / HTTP/1.10",
        "GET / http/1.1",
        "GET /a\u{7F} HTTP/1.1",  // DEL in target
        "GET /a\rb HTTP/1.1",  // bare CR
        " GET / HTTP/1.1",
    ])
    func malformedRequestLines(line: String) throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: line + "\r\nHost: x\r\n\r\n")
        #expect(throws: HTTPParseError.malformedRequestLine) { try parser.parseRequest(&buffer) }
    }

    @Test func unsupportedVersion() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: "GET / HTTP/2.0\r\nHost: x\r\n\r\n")
        #expect(throws: HTTPParseError.unsupportedVersion) { try parser.parseRequest(&buffer) }
        #expect(HTTPParseError.unsupportedVersion.status == 505)
        var old = ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n")
        #expect(try parser.parseRequest(&old)?.version == .http1_0)
    }

    @Test(arguments: [
        "Host : x",  // space before colon
        "Host\t: x",
        "NoColon",
        ": value",  // empty name
        "Na me: x",
        " folded",  // obsolete line folding
        "\tfolded",
        "X: a\u{0}b",  // NUL
        "X: a\rb",  // bare CR
        "X: a\u{1}b",
    ])
    func malformedHeaders(line: String) throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n" + line + "\r\n\r\n")
        #expect(throws: HTTPParseError.malformedHeader) { try parser.parseRequest(&buffer) }
        #expect(HTTPParseError.malformedHeader.status == 400)
    }

    @Test func parsesResponse() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        buffer.writeInteger(UInt8(0x81))
        let head = try #require(try parser.parseResponse(&buffer))
        #expect(head.status == 101)
        #expect(head.reason == "Switching Protocols")
        #expect(head.headers["upgrade"] == "websocket")
        #expect(buffer.readableBytes == 1)
    }

    @Test func responseWithEmptyReason() throws {
        var parser = HTTPHeadParser()
        var a = ByteBuffer(string: "HTTP/1.1 101\r\n\r\n")
        #expect(try parser.parseResponse(&a)?.reason == "")
        var b = ByteBuffer(string: "HTTP/1.1 404 \r\n\r\n")
        #expect(try parser.parseResponse(&b)?.status == 404)
    }

    @Test(arguments: ["HTTP/1.1 10 Oops", "HTTP/1.1 1011 x", "HTTP/1.1  101 x", "HTTP/1.1 abc x", "GET / HTTP/1.1",
                      "HTTP/1.1 101 a\u{1}b", "HTTP/1.1", ""])
    func malformedStatusLines(line: String) throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: line + "\r\n\r\n")
        #expect(throws: HTTPParseError.malformedStatusLine) { try parser.parseResponse(&buffer) }
    }

    // Found by FuzzHandshake: "050" parsed as status 50, which is written back as "HTTP/1.1 50 …", a
    // status line that does not parse. Valid codes are 100 through 599 (RFC 9110 §15).
    @Test(arguments: ["HTTP/1.1 000 x", "HTTP/1.1 050 Switching Protocols", "HTTP/1.1 099"])
    func statusCodesUnder100AreMalformed(line: String) throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: line + "\r\n\r\n")
        #expect(throws: HTTPParseError.malformedStatusLine) { try parser.parseResponse(&buffer) }
        var lowest = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(try parser.parseResponse(&lowest)?.status == 100)
    }

    @Test func writesHeads() {
        var buffer = ByteBuffer()
        HTTPRequestHead(target: "/x", headers: ["Host": "h", "A": "b"]).write(into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "GET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n")
        HTTPResponseHead(status: 101).write(into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "HTTP/1.1 101 Switching Protocols\r\n\r\n")
    }

    @Test func writesOtherVersionsAndStatuses() {
        var buffer = ByteBuffer()
        HTTPResponseHead(version: HTTPVersion(major: 1, minor: 0), status: 404).write(into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "HTTP/1.0 404 Not Found\r\n\r\n")
        HTTPResponseHead(status: 1000, reason: "Odd").write(into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "HTTP/1.1 1000 Odd\r\n\r\n")
        HTTPResponseHead(status: 599, reason: "").write(into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "HTTP/1.1 599 \r\n\r\n")
    }

    /// Names compare equal across the case of letters only: bytes 0x20 apart that are not letters
    /// ("[" and "{", "@" and "`") differ, in native strings and in bridged or small ones alike.
    @Test(arguments: [
        ("Sec-WebSocket-Key", "sec-websocket-key", true), ("HOST", "host", true), ("host", "hosts", false),
        ("a[", "a{", false), ("@x", "`x", false), ("X-Ab", "x-aB", true), ("X-Ab", "x-aC", false),
        ("é", "É", false), ("", "", true),
    ])
    func fieldNamesFoldASCIILettersOnly(a: String, b: String, equal: Bool) {
        let fields = HTTPFields([(a, "v")])
        #expect(fields.contains(b) == equal)
        #expect(fields.values(String(decoding: Array(b.utf8), as: UTF8.self)) == (equal ? ["v"] : []))
    }

    @Test func writtenHeadsParseBack() throws {
        let request = HTTPRequestHead(method: "GET", target: "/p?q", headers: ["Host": "h", "X": "1", "x": "2"])
        var buffer = ByteBuffer()
        request.write(into: &buffer)
        var parser = HTTPHeadParser()
        #expect(try parser.parseRequest(&buffer) == request)
        let response = HTTPResponseHead(status: 426, headers: ["Upgrade": "websocket"])
        response.write(into: &buffer)
        #expect(try parser.parseResponse(&buffer) == response)
    }

    /// containsToken agrees with tokens(_:) on the edge cases of list syntax.
    @Test(arguments: [
        ("Upgrade", true), ("upgrade", true), (" \tUpgrade\t ", true), ("keep-alive,upgrade", true),
        (",,upgrade,,", true), ("keep-alive , UPGRADE", true), ("upgrade2", false), ("up grade", false),
        ("upgrad", false), ("", false), (",", false), ("keep-alive", false), ("\"upgrade\"", false),
    ])
    func containsTokenMatchesWholeTrimmedElements(value: String, expected: Bool) {
        var fields: HTTPFields = ["Connection": value]
        fields.add("Other", "upgrade")
        #expect(fields.containsToken("connection", "Upgrade") == expected)
        #expect(fields.tokens("connection").contains { $0.lowercased() == "upgrade" } == expected)
        #expect(!fields.containsToken("connection", ""))
    }

    @Test func fieldsAreCaseInsensitiveAndOrdered() {
        var fields: HTTPFields = ["Connection": "keep-alive, Upgrade", "X-A": "1"]
        fields.add("x-a", "2")
        fields.add("Sec-WebSocket-Protocol", " chat ,, superchat,")
        #expect(fields["x-A"] == "1")
        #expect(fields.values("X-a") == ["1", "2"])
        #expect(fields.tokens("connection") == ["keep-alive", "Upgrade"])
        #expect(fields.tokens("sec-websocket-protocol") == ["chat", "superchat"])
        #expect(fields.containsToken("CONNECTION", "upgrade"))
        #expect(!fields.containsToken("Connection", "close"))
        #expect(fields.contains("connection") && !fields.contains("Host"))
        fields.replaceOrAdd("X-A", "3")
        #expect(fields.values("x-a") == ["3"])
        #expect(fields.map(\.name) == ["Connection", "X-A", "Sec-WebSocket-Protocol"])
        fields.remove("connection")
        #expect(!fields.contains("Connection"))
        fields["New"] = "v"
        #expect(fields["new"] == "v")
        fields["new"] = nil
        #expect(fields.count == 2)
        let lower: HTTPFields = ["a": "1"]
        #expect(HTTPFields([("A", "1")]) == lower)
        #expect(lower != ["a": "2"])
        #expect(lower != ["a": "1", "b": "2"])
        #expect(lower.hashValue == HTTPFields([(name: "A", value: "1")]).hashValue)
    }
}
