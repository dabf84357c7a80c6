import DuplexCore
import Foundation
import NIOCore
import Testing

@Suite struct HandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    static func validHeaders() -> HTTPFields {
        [
            "Host": "server.example.com",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Origin": "http://example.com",
            "Sec-WebSocket-Protocol": "chat, superchat",
            "Sec-WebSocket-Version": "13",
        ]
    }

    static func request(method: String = "GET", version: HTTPVersion = .http1_1,
                        _ edit: (inout HTTPFields) -> Void = { _ in }) -> HTTPRequestHead {
        var headers = validHeaders()
        edit(&headers)
        return HTTPRequestHead(method: method, target: "/chat", version: version, headers: headers)
    }

    /// Base64 agrees with Foundation's for every length of input up to 64 bytes, both ways.
    @Test func base64MatchesFoundation() {
        for length in 0...64 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            let expected = Data(bytes).base64EncodedString()
            #expect(Base64.encode(bytes) == expected)
            #expect(Base64.decode(expected) == bytes)
        }
    }

    /// Padding only at the end and at most two; bits past the data must be zero; nothing but the
    /// alphabet.
    @Test(arguments: ["=AAA", "AA=A", "A===", "====", "AAA", "AAAAA", "AB==", "AAB=", "AA==AAAA", "AAA-", "AA\u{00E9}"])
    func base64RejectsNonCanonicalInput(text: String) {
        #expect(Base64.decode(text) == nil)
    }

    static func expectRejection(_ request: HTTPRequestHead, _ error: HandshakeError, status: Int,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: error, sourceLocation: sourceLocation) { try ServerHandshake.validate(request) }
        #expect(error.status == status, sourceLocation: sourceLocation)
    }

    // MARK: Accept

    @Test func rfcAcceptExample() {
        #expect(WebSocketAccept.value(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(WebSocketAccept.guid == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    }

    // MARK: Server

    @Test func validRequest() throws {
        let request = try ServerHandshake.validate(Self.request())
        #expect(request.key == Self.key)
        #expect(request.host == "server.example.com")
        #expect(request.origin == "http://example.com")
        #expect(request.subprotocols == ["chat", "superchat"])
        #expect(request.extensions == [])
        #expect(request.head.target == "/chat")

        let response = ServerHandshake.response(accepting: request, subprotocol: "chat")
        #expect(response.status == 101)
        #expect(response.reason == "Switching Protocols")
        #expect(response.headers["Upgrade"] == "websocket")
        #expect(response.headers["Connection"] == "Upgrade")
        #expect(response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(response.headers["Sec-WebSocket-Protocol"] == "chat")
        #expect(!response.headers.contains("Sec-WebSocket-Extensions"))

        var buffer = ByteBuffer()
        response.write(into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == """
            HTTP/1.1 101 Switching Protocols\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r
            Sec-WebSocket-Protocol: chat\r
            \r

            """)
    }

    @Test func responseWithExtensionsAndExtraHeaders() throws {
        let request = try ServerHandshake.validate(Self.request {
            $0.add("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
            $0.add("sec-websocket-extensions", "x-test")
        })
        #expect(request.extensions.map(\.name) == ["permessage-deflate", "x-test"])
        let response = ServerHandshake.response(
            accepting: request, subprotocol: nil,
            extensions: [WebSocketExtension(name: "permessage-deflate", parameters: [.init(name: "server_no_context_takeover")])],
            headers: ["Set-Cookie": "a=b"])
        #expect(!response.headers.contains("Sec-WebSocket-Protocol"))
        #expect(response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; server_no_context_takeover")
        #expect(response.headers.map(\.name).last == "Set-Cookie")
    }

    @Test func caseInsensitiveHeadersAndTokenLists() throws {
        let head = HTTPRequestHead(target: "/", headers: [
            "HOST": "h:8080",
            "upgrade": "WebSocket",
            "connection": "keep-alive, Upgrade",
            "SEC-WEBSOCKET-KEY": Self.key,
            "sec-websocket-version": "13",
            "sec-websocket-protocol": "a",
            "Sec-WebSocket-Protocol": "b , c",
        ])
        let request = try ServerHandshake.validate(head)
        #expect(request.host == "h:8080")
        #expect(request.origin == nil)
        #expect(request.subprotocols == ["a", "b", "c"])
        #expect(try ServerHandshake.validate(Self.request { $0["Connection"] = "upgrade,keep-alive" }).key == Self.key)
        #expect(try ServerHandshake.validate(Self.request { $0["Upgrade"] = "h2c, websocket" }).key == Self.key)
    }

    @Test func rejectsNonGET() {
        Self.expectRejection(Self.request(method: "POST"), .methodNotAllowed("POST"), status: 405)
        let (head, body) = ServerHandshake.response(rejecting: .methodNotAllowed("POST"))
        #expect(head.status == 405)
        #expect(head.reason == "Method Not Allowed")
        #expect(head.headers["Allow"] == "GET")
        #expect(String(buffer: body) == "WebSocket handshake requires GET, not POST\n")
    }

    @Test func rejectsOldHTTP() {
        Self.expectRejection(Self.request(version: .http1_0), .unsupportedHTTPVersion(.http1_0), status: 400)
        Self.expectRejection(Self.request(version: HTTPVersion(major: 2, minor: 0)),
                             .unsupportedHTTPVersion(HTTPVersion(major: 2, minor: 0)), status: 505)
    }

    @Test func rejectsMissingOrDuplicateHost() {
        Self.expectRejection(Self.request { $0.remove("Host") }, .missingHost, status: 400)
        Self.expectRejection(Self.request { $0.add("host", "other") }, .multipleHosts, status: 400)
    }

    @Test func rejectsPlainHTTP() {
        Self.expectRejection(Self.request { $0.remove("Upgrade") }, .notWebSocketUpgrade, status: 426)
        Self.expectRejection(Self.request { $0["Upgrade"] = "h2c" }, .notWebSocketUpgrade, status: 426)
        let (head, _) = ServerHandshake.response(rejecting: .notWebSocketUpgrade)
        #expect(head.status == 426)
        #expect(head.reason == "Upgrade Required")
        #expect(head.headers["Upgrade"] == "websocket")
        #expect(head.headers.containsToken("Connection", "upgrade"))
        #expect(head.headers.containsToken("Connection", "close"))
    }

    @Test func rejectsMissingConnectionUpgrade() {
        Self.expectRejection(Self.request { $0.remove("Connection") }, .missingConnectionUpgrade, status: 400)
        Self.expectRejection(Self.request { $0["Connection"] = "keep-alive" }, .missingConnectionUpgrade, status: 400)
    }

    @Test func rejectsMissingKey() {
        Self.expectRejection(Self.request { $0.remove("Sec-WebSocket-Key") }, .missingKey, status: 400)
    }

    @Test func rejectsDuplicateKey() {
        Self.expectRejection(Self.request { $0.add("Sec-WebSocket-Key", Self.key) }, .duplicateKey, status: 400)
    }

    @Test(arguments: [
        "not base64!!",  // not base64
        "dGhlIHNhbXBsZSBub25jZQ",  // unpadded
        "AAAAAAAAAAAAAAAAAAAA",  // 15 bytes
        "AAAAAAAAAAAAAAAAAAAAAAA=",  // 17 bytes
        "",
        "dGhlIHNhbXBsZSBub25jZR==",  // non-canonical trailing bits
    ])
    func rejectsBadKeys(key: String) {
        Self.expectRejection(Self.request { $0["Sec-WebSocket-Key"] = key }, .invalidKey(key), status: 400)
        #expect(HandshakeError.invalidKey(key).reason == "Sec-WebSocket-Key must be base64 of 16 bytes")
    }

    @Test func keyLengthBoundaries() throws {
        // 15 and 17 byte encodings are what they claim to be, and 16 is accepted, trimmed.
        #expect(Base64.decode("AAAAAAAAAAAAAAAAAAAA")?.count == 15)
        #expect(Base64.decode("AAAAAAAAAAAAAAAAAAAAAAA=")?.count == 17)
        #expect(try ServerHandshake.validate(Self.request { $0["Sec-WebSocket-Key"] = " AAAAAAAAAAAAAAAAAAAAAA==\t" }).key
            == "AAAAAAAAAAAAAAAAAAAAAA==")
        #expect(try ServerHandshake.validate(Self.request { $0["Sec-WebSocket-Key"] = "AAAAAAAAAAAAAAAAAAAAAA==" }).key
            == "AAAAAAAAAAAAAAAAAAAAAA==")
    }

    @Test func rejectsOtherWebSocketVersions() {
        Self.expectRejection(Self.request { $0["Sec-WebSocket-Version"] = "8" }, .unsupportedWebSocketVersion("8"), status: 426)
        Self.expectRejection(Self.request { $0.remove("Sec-WebSocket-Version") }, .unsupportedWebSocketVersion(nil), status: 426)
        let (head, body) = ServerHandshake.response(rejecting: .unsupportedWebSocketVersion("8"))
        #expect(head.status == 426)
        #expect(head.headers["Sec-WebSocket-Version"] == "13")
        #expect(head.headers["Content-Type"] == "text/plain; charset=utf-8")
        #expect(head.headers["Content-Length"] == String(body.readableBytes))
        #expect(String(buffer: body) == "Sec-WebSocket-Version must be 13\n")
    }

    @Test func rejectsMalformedExtensions() throws {
        let request = Self.request { $0["Sec-WebSocket-Extensions"] = "x;;" }
        Self.expectRejection(request, .malformedExtensions(.expectedToken(header: "x;;", offset: 2)), status: 400)
    }

    @Test func rejectionResponseShape() {
        let (head, body) = ServerHandshake.response(rejecting: .missingKey)
        #expect(head.status == 400)
        #expect(head.reason == "Bad Request")
        #expect(head.headers["Connection"] == "close")
        #expect(head.headers["Content-Length"] == "\(body.readableBytes)")
        #expect(String(buffer: body) == "Sec-WebSocket-Key header is required\n")
        let (tooLarge, _) = ServerHandshake.response(rejecting: HTTPParseError.headTooLarge.status, reason: "too large")
        #expect(tooLarge.status == 431)
        #expect(tooLarge.reason == "Request Header Fields Too Large")
    }

    @Test func parsedRequestValidates() throws {
        var parser = HTTPHeadParser()
        var buffer = ByteBuffer(string: """
            GET /chat HTTP/1.1\r
            Host: server.example.com\r
            Upgrade: websocket\r
            Connection: keep-alive, Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            \r

            """)
        let head = try #require(try parser.parseRequest(&buffer))
        #expect(try ServerHandshake.validate(head).key == Self.key)
    }

    // MARK: Subprotocols

    @Test func subprotocolPolicy() {
        let supported = SubprotocolPolicy.supported(["superchat", "chat"])
        #expect(supported.select(offered: ["chat", "superchat"]) == "chat")  // the client's order wins
        #expect(supported.select(offered: ["superchat", "chat"]) == "superchat")
        #expect(supported.select(offered: ["other", "chat"]) == "chat")
        #expect(supported.select(offered: []) == nil)
        #expect(supported.select(offered: ["other"]) == nil)
        #expect(SubprotocolPolicy.none.select(offered: ["chat"]) == nil)
        let custom = SubprotocolPolicy.custom { $0.last }
        #expect(custom.select(offered: ["a", "b"]) == "b")
        #expect(custom.select(offered: []) == nil)
        #expect(SubprotocolPolicy.custom { _ in "unoffered" }.select(offered: ["a"]) == nil)
    }

    // MARK: Client

    static func client(subprotocols: [String] = ["chat", "superchat"],
                       extensions: [WebSocketExtension] = [WebSocketExtension(name: "permessage-deflate")]) -> ClientHandshake {
        ClientHandshake(host: "server.example.com", target: "/chat", headers: ["Origin": "http://example.com"],
                        subprotocols: subprotocols, extensions: extensions, key: key)
    }

    static func response(_ edit: (inout HTTPFields) -> Void = { _ in }) -> HTTPResponseHead {
        var headers: HTTPFields = [
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        ]
        edit(&headers)
        return HTTPResponseHead(status: 101, headers: headers)
    }

    @Test func clientRequest() throws {
        let client = Self.client()
        #expect(client.key == Self.key)
        var buffer = ByteBuffer()
        client.request.write(into: &buffer)
        #expect(String(buffer: buffer) == """
            GET /chat HTTP/1.1\r
            Host: server.example.com\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            Sec-WebSocket-Protocol: chat, superchat\r
            Sec-WebSocket-Extensions: permessage-deflate\r
            Origin: http://example.com\r
            \r

            """)
        // The client's request passes the server's checks.
        let request = try ServerHandshake.validate(client.request)
        #expect(request.subprotocols == ["chat", "superchat"])
        let response = ServerHandshake.response(accepting: request, subprotocol: "superchat")
        #expect(try client.validate(response).subprotocol == "superchat")
    }

    @Test func clientRandomKeysAreValidAndDistinct() throws {
        let a = ClientHandshake(host: "[::1]:8080")
        let b = ClientHandshake(host: "[::1]:8080")
        #expect(a.key != b.key)
        #expect(a.request.target == "/")
        #expect(a.request.headers["Host"] == "[::1]:8080")
        #expect(!a.request.headers.contains("Sec-WebSocket-Protocol"))
        #expect(!a.request.headers.contains("Sec-WebSocket-Extensions"))
        #expect(try ServerHandshake.validate(a.request).key == a.key)
    }

    @Test func clientAcceptsValidResponse() throws {
        let accepted = try Self.client().validate(Self.response {
            $0["Connection"] = "keep-alive, upgrade"
            $0["Upgrade"] = "WebSocket"
            $0.add("Sec-WebSocket-Protocol", "chat")
            $0.add("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")
        })
        #expect(accepted.subprotocol == "chat")
        #expect(accepted.extensions == [WebSocketExtension(name: "permessage-deflate", parameters: [.init(name: "server_no_context_takeover")])])
        let plain = try Self.client().validate(Self.response())
        #expect(plain.subprotocol == nil)
        #expect(plain.extensions == [])
    }

    @Test func clientRejectsStatus() {
        let response = HTTPResponseHead(status: 403, headers: ["Content-Length": "0"])
        #expect(throws: ClientHandshakeError.unexpectedStatus(403, "Forbidden")) { try Self.client().validate(response) }
        #expect(ClientHandshakeError.unexpectedStatus(403, "Forbidden").description.contains("101"))
    }

    @Test func clientRejectsMissingUpgrade() {
        #expect(throws: ClientHandshakeError.missingUpgrade(nil)) {
            try Self.client().validate(Self.response { $0.remove("Upgrade") })
        }
        #expect(throws: ClientHandshakeError.missingUpgrade("h2c")) {
            try Self.client().validate(Self.response { $0["Upgrade"] = "h2c" })
        }
        #expect(ClientHandshakeError.missingUpgrade(nil).description.contains("Upgrade"))
    }

    @Test func clientRejectsMissingConnectionUpgrade() {
        #expect(throws: ClientHandshakeError.missingConnectionUpgrade("close")) {
            try Self.client().validate(Self.response { $0["Connection"] = "close" })
        }
        #expect(ClientHandshakeError.missingConnectionUpgrade(nil).description.contains("Connection"))
    }

    @Test func clientRejectsAccept() {
        #expect(throws: ClientHandshakeError.missingAccept) {
            try Self.client().validate(Self.response { $0.remove("Sec-WebSocket-Accept") })
        }
        #expect(throws: ClientHandshakeError.wrongAccept(expected: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", received: "nope")) {
            try Self.client().validate(Self.response { $0["Sec-WebSocket-Accept"] = "nope" })
        }
        #expect(ClientHandshakeError.wrongAccept(expected: "e", received: "r").description.contains("Sec-WebSocket-Accept"))
    }

    @Test func clientRejectsSubprotocol() {
        #expect(throws: ClientHandshakeError.unofferedSubprotocol("other")) {
            try Self.client().validate(Self.response { $0["Sec-WebSocket-Protocol"] = "other" })
        }
        #expect(throws: ClientHandshakeError.unofferedSubprotocol("chat, superchat")) {
            try Self.client().validate(Self.response { $0["Sec-WebSocket-Protocol"] = "chat, superchat" })
        }
        #expect(throws: ClientHandshakeError.unofferedSubprotocol("chat")) {
            try Self.client(subprotocols: []).validate(Self.response { $0["Sec-WebSocket-Protocol"] = "chat" })
        }
        #expect(ClientHandshakeError.unofferedSubprotocol("x").description.contains("subprotocol"))
    }

    @Test func clientRejectsExtensions() {
        #expect(throws: ClientHandshakeError.unofferedExtension("x-other")) {
            try Self.client().validate(Self.response { $0["Sec-WebSocket-Extensions"] = "permessage-deflate, x-other" })
        }
        #expect(throws: ClientHandshakeError.unofferedExtension("permessage-deflate")) {
            try Self.client(extensions: []).validate(Self.response { $0["Sec-WebSocket-Extensions"] = "permessage-deflate" })
        }
        #expect(throws: ClientHandshakeError.malformedExtensions(.expectedToken(header: "x; a=", offset: 5))) {
            try Self.client().validate(Self.response { $0["Sec-WebSocket-Extensions"] = "x; a=" })
        }
        #expect(ClientHandshakeError.unofferedExtension("x").description.contains("extension"))
        #expect(ClientHandshakeError.malformedExtensions(.emptyList(header: "")).description.contains("Sec-WebSocket-Extensions"))
    }
}
