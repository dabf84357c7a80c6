import Duplex
import NIOCore
import Testing

/// The Origin policy over real sockets: cross-site pages refused with 403 and the reason, same-origin
/// pages and non-browser clients accepted.
@Suite(.timeLimit(.minutes(1))) struct OriginTests {
    func request(port: Int, origin: String?) -> String {
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
            (origin.map { "Origin: \($0)\r\n" } ?? "") + "\r\n"
    }

    @Test func crossOriginIsRefusedWith403AndItsReason() async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            try await client.send(request(port: port, origin: "https://evil.example"))
            let response = String(buffer: try await client.receivedUntilClosed())
            #expect(response.statusLine == "HTTP/1.1 403 Forbidden")
            #expect(response.hasSuffix("\r\n\r\norigin https://evil.example is not allowed\n"))
            #expect(!response.contains("Sec-WebSocket-Accept"))
        }
    }

    @Test(arguments: [nil, "http://127.0.0.1:PORT", "HTTP://127.0.0.1:PORT"])
    func sameOriginAndNoOriginAreAccepted(origin: String?) async throws {
        try await withEchoServer { _, port in
            let client = try await RawTCPClient.connect(port: port)
            defer { client.close() }
            try await client.send(request(port: port, origin: origin?.replacing("PORT", with: "\(port)")))
            let response = String(buffer: try await client.waitUntil { String(buffer: $0).contains("\r\n\r\n") })
            #expect(response.statusLine == "HTTP/1.1 101 Switching Protocols")
        }
    }

    @Test func allowListWithTheClient() async throws {
        var configuration = WebSocketServer.Configuration(origins: OriginPolicy(allowed: ["https://*.example.com"]))
        configuration.port = 0
        try await withEchoServer(configuration) { _, port in
            var headers = HTTPFields()
            headers.add("Origin", "https://app.example.com")
            let ws = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(headers: headers))
            try await ws.outbound.write(.text("hi"))
            var iterator = ws.inbound.makeAsyncIterator()
            #expect(await iterator.next() == .text("hi"))
            _ = try await ws.outbound.close()

            var other = HTTPFields()
            other.add("Origin", "https://example.net")
            do {
                _ = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(headers: other))
                Issue.record("a cross-origin client connected")
            } catch WebSocketClientError.handshakeFailed(.unexpectedStatus(let status, _)) {
                #expect(status == 403)
            }
        }
    }
}
