import Duplex
import Foundation
import NIOCore
import NIOSSL
import Testing

/// The client through an HTTP `CONNECT` proxy (a small Python one), for ws:// and wss://, with and
/// without proxy authentication; and the proxy the environment names.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ProxyTests {
    static func echoServer(tls: ServerTLS? = nil) async throws -> (WebSocketServer, Int) {
        let server = WebSocketServer(configuration: .init(port: 0, tls: tls),
                                     handler: .callbacks { ws in ws.onMessage = { ws, message in try? ws.send(message) } })
        return (server, try await server.start().port!)
    }

    static func exchange(_ url: String, _ configuration: WebSocketClient.Configuration) async throws {
        let ws = try await WebSocketClient.connect(to: url, configuration: configuration)
        var iterator = ws.inbound.makeAsyncIterator()
        try await ws.outbound.write(.text("through the tunnel"))
        #expect(await iterator.next() == .text("through the tunnel"))
        _ = try await ws.outbound.close()
    }

    @Test func wsAndWssThroughAProxy() async throws {
        let proxy = try InteropTests.PeerProcess(.python, script: "py_connect_proxy.py", arguments: [])
        defer { proxy.stop() }
        let proxyPort = Int(try proxy.line(startingWith: "PORT ").split(separator: " ")[1])!
        let via = HTTPProxy(host: "127.0.0.1", port: proxyPort)

        let (plain, plainPort) = try await Self.echoServer()
        try await Self.exchange("ws://127.0.0.1:\(plainPort)/", .init(proxy: .proxy(via)))
        #expect(try proxy.line(startingWith: "CONNECT ") == "CONNECT 127.0.0.1:\(plainPort) -")
        await plain.shutdown()

        let certificates = try TLSTests.Certificates()
        defer { certificates.remove() }
        let (secure, securePort) = try await Self.echoServer(
            tls: try ServerTLS(certificateChainPath: certificates.certificate, privateKeyPath: certificates.key))
        var tls = WebSocketClient.defaultTLS
        tls.trustRoots = .file(certificates.ca)
        try await Self.exchange("wss://localhost:\(securePort)/", .init(tls: tls, proxy: .proxy(via)))
        #expect(try proxy.line(startingWith: "CONNECT localhost") == "CONNECT localhost:\(securePort) -")
        await secure.shutdown()
    }

    @Test func proxyAuthentication() async throws {
        let credentials = HTTPProxy.fromEnvironment(for: "ws://example.com/", environment: ["HTTP_PROXY": "http://user:pa%3Ass@127.0.0.1:1"])
        #expect(credentials?.authorization == "Basic dXNlcjpwYTpzcw==")  // user:pa:ss
        let proxy = try InteropTests.PeerProcess(.python, script: "py_connect_proxy.py", arguments: ["--require", "Basic dXNlcjpwYTpzcw=="])
        defer { proxy.stop() }
        let proxyPort = Int(try proxy.line(startingWith: "PORT ").split(separator: " ")[1])!
        let (server, port) = try await Self.echoServer()
        await #expect {
            try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/", configuration: .init(proxy: .proxy(HTTPProxy(host: "127.0.0.1", port: proxyPort))))
        } throws: { error in
            "\(error)" == "proxy: the proxy answered CONNECT with 407 Proxy Authentication Required"
        }
        try await Self.exchange("ws://127.0.0.1:\(port)/",
                                .init(proxy: .proxy(HTTPProxy(host: "127.0.0.1", port: proxyPort, authorization: credentials?.authorization))))
        await server.shutdown()
    }

    @Test(arguments: [
        // url, environment, proxy "host:port" or nil
        ("ws://example.com/", ["HTTP_PROXY": "http://proxy.local:3128"], "proxy.local:3128"),
        ("ws://example.com/", ["http_proxy": "proxy.local:8080"], "proxy.local:8080"),
        ("wss://example.com/", ["HTTP_PROXY": "http://plain:1"], nil),
        ("wss://example.com/", ["HTTPS_PROXY": "http://secure:3128/", "HTTP_PROXY": "http://plain:1"], "secure:3128"),
        ("wss://example.com/", ["ALL_PROXY": "http://all:9"], "all:9"),
        ("ws://example.com/", ["HTTP_PROXY": "http://[::1]:3128"], "::1:3128"),
        ("ws://example.com/", ["HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"], nil),
        ("ws://api.example.com/", ["HTTP_PROXY": "http://p:1", "NO_PROXY": "other.org, .example.com"], nil),
        ("ws://notexample.com/", ["HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"], "p:1"),
        ("ws://example.com/", ["HTTP_PROXY": "http://p:1", "no_proxy": "*"], nil),
        ("ws://localhost:8080/", ["HTTP_PROXY": "http://p:1"], nil),
        ("ws://127.0.0.1:8080/", ["HTTP_PROXY": "http://p:1"], nil),
        ("ws://[::1]:8080/", ["HTTP_PROXY": "http://p:1"], nil),
        ("ws://example.com/", ["HTTP_PROXY": "socks5://p:1"], nil),
        ("ws://example.com/", [:], nil),
    ] as [(String, [String: String], String?)])
    func proxyFromTheEnvironment(url: String, environment: [String: String], expected: String?) {
        let proxy = HTTPProxy.fromEnvironment(for: url, environment: environment)
        #expect(proxy.map { "\($0.host):\($0.port)" } == expected)
    }
}
