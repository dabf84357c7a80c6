@testable import Duplex
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Trusted proxies and the admission hook: who the client is, and the application's say on it.
@Suite(.timeLimit(.minutes(1))) struct AdmissionTests {
    // MARK: Client address behind proxies

    @Test func ipNetworksParseAndMatch() throws {
        func address(_ ip: String) throws -> SocketAddress { try SocketAddress(ipAddress: ip, port: 1) }
        let private10 = try IPNetwork("10.0.0.0/8")
        #expect(private10.contains(try address("10.200.3.4")))
        #expect(!private10.contains(try address("11.0.0.1")))
        #expect(private10.contains(try address("::ffff:10.1.2.3")), "IPv4-mapped IPv6 matches the IPv4 network")
        #expect(try IPNetwork("10.1.2.3/8").description == "10.0.0.0/8")
        let v6 = try IPNetwork("2001:db8:abcd::/48")
        #expect(v6.contains(try address("2001:db8:abcd:12::1")))
        #expect(!v6.contains(try address("2001:db8:abce::1")))
        #expect(!v6.contains(try address("10.0.0.1")))
        #expect(try IPNetwork("::1").contains(try address("::1")))
        #expect(try IPNetwork("192.0.2.7").prefixLength == 32)
        #expect(try IPNetwork("0.0.0.0/0").contains(try address("203.0.113.9")))
        #expect(throws: IPNetworkError.invalidAddress("example.com")) { try IPNetwork("example.com") }
        #expect(throws: IPNetworkError.invalidPrefix("10.0.0.0/33")) { try IPNetwork("10.0.0.0/33") }
        #expect(throws: IPNetworkError.invalidPrefix("::/129")) { try IPNetwork("::/129") }
        #expect(throws: IPNetworkError.invalidPrefix("10.0.0.0/x")) { try IPNetwork("10.0.0.0/x") }
    }

    @Test(arguments: [
        // peer, trusted, headers, client
        ("198.51.100.1", ["10.0.0.0/8"], ["X-Forwarded-For": "203.0.113.7"], "198.51.100.1"),  // untrusted peer: headers ignored
        ("10.0.0.2", ["10.0.0.0/8"], [:], "10.0.0.2"),  // trusted, nothing forwarded
        ("10.0.0.2", ["10.0.0.0/8"], ["X-Forwarded-For": "203.0.113.7"], "203.0.113.7"),
        ("10.0.0.2", ["10.0.0.0/8"], ["X-Forwarded-For": "1.1.1.1, 203.0.113.7, 10.0.0.9"], "203.0.113.7"),  // spoofed leftmost ignored
        ("10.0.0.2", ["10.0.0.0/8"], ["X-Forwarded-For": "10.0.0.5, 10.0.0.9"], "10.0.0.5"),  // all trusted: the farthest
        ("10.0.0.2", ["10.0.0.0/8"], ["X-Forwarded-For": "203.0.113.7, unknown"], "10.0.0.2"),  // garbage hop: stop at the proxy
        ("10.0.0.2", ["10.0.0.0/8"], ["X-Forwarded-For": "2001:db8::7"], "2001:db8::7"),
        ("10.0.0.2", ["10.0.0.0/8"], ["X-Forwarded-For": "203.0.113.7:5555"], "203.0.113.7"),
        ("10.0.0.2", ["10.0.0.0/8"], ["Forwarded": #"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.3"#], "2001:db8:cafe::17"),
        ("10.0.0.2", ["10.0.0.0/8"], ["Forwarded": "for=192.0.2.60;proto=http;by=203.0.113.43", "X-Forwarded-For": "1.2.3.4"], "192.0.2.60"),
        ("10.0.0.2", ["10.0.0.0/8"], ["Forwarded": "for=_hidden"], "10.0.0.2"),
        ("::1", ["::1"], ["X-Forwarded-For": "203.0.113.7"], "203.0.113.7"),
    ] as [(String, [String], [String: String], String)])
    func clientAddressBehindProxies(peer: String, trusted: [String], headers: [String: String], client: String) throws {
        let fields = HTTPFields(headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
        let resolved = ForwardedClient.address(peer: try SocketAddress(ipAddress: peer, port: 443), headers: fields,
                                               trusted: try trusted.map { try IPNetwork($0) })
        #expect(resolved?.ipAddress == client)
    }

    /// A well-behaved client of ``greetingServer(_:)``, past its greeting.
    func talker(port: Int) async throws -> LimitsTests.Talker {
        let talker = try await LimitsTests.Talker.connect(port: port)
        #expect(await talker.iterator.next() == .text("127.0.0.1"))
        return talker
    }

    /// A server that greets each connection with the client address it sees.
    func greetingServer(_ configuration: WebSocketServer.Configuration) async throws -> (WebSocketServer, Int) {
        var configuration = configuration
        configuration.port = 0
        let server = WebSocketServer(configuration: configuration, handler: .callbacks { ws in
            try? ws.send(text: ws.remoteAddress?.ipAddress ?? "?")
            ws.onMessage = { ws, message in try? ws.send(message) }
        })
        return (server, try await server.start().port!)
    }

    /// Opens a raw connection from `local`, sends an upgrade with `headers`; returns the status line
    /// and, once open, the greeting.
    func open(port: Int, from local: String = "127.0.0.1", path: String = "/", headers: String = "") async throws -> (RawTCPClient, String, String?) {
        let raw = try await RawTCPClient.connect(port: port, from: local)
        try await raw.send(upgradeRequest(path: path, extraHeaders: headers))
        let bytes = try await raw.waitUntil { String(buffer: $0).contains("\r\n\r\n") }
        let status = String(String(buffer: bytes).statusLine)
        guard status.contains(" 101 ") else {
            return (raw, String(buffer: try await raw.receivedUntilClosed()), nil)
        }
        let greeted = try await raw.waitUntil { (try? framesAfterHead($0).frames.count) ?? 0 >= 1 }
        let greeting = try framesAfterHead(greeted).frames.first.map { String(buffer: $0.payload) }
        return (raw, status, greeting)
    }

    @Test func perAddressLimitCountsTheForwardedClient() async throws {
        let (server, port) = try await greetingServer(.init(limits: ServerLimits(maxConnectionsPerAddress: 2),
                                                            trustedProxies: [try IPNetwork("127.0.0.1")]))
        let good = try await talker(port: port)
        var held: [RawTCPClient] = []
        for _ in 0..<2 {
            let (raw, _, greeting) = try await open(port: port, headers: "X-Forwarded-For: 203.0.113.7\r\n")
            #expect(greeting == "203.0.113.7")
            held.append(raw)
        }
        let (_, refused, _) = try await open(port: port, headers: "X-Forwarded-For: 203.0.113.7\r\n")
        #expect(refused.statusLine == "HTTP/1.1 429 Too Many Requests")
        #expect(refused.contains("\r\nRetry-After: 10\r\n"))
        #expect(refused.hasSuffix("too many connections from 203.0.113.7\n"))
        // Another client behind the same proxy is counted apart.
        let (other, _, otherGreeting) = try await open(port: port, headers: "X-Forwarded-For: 203.0.113.8\r\n")
        #expect(otherGreeting == "203.0.113.8")
        // From an untrusted peer the header is ignored: the peer is the client.
        let (spoofer, _, spoofed) = try await open(port: port, from: "127.0.0.3", headers: "X-Forwarded-For: 203.0.113.9\r\n")
        #expect(spoofed == "127.0.0.3")
        try await good.exchange(count: 5, tag: "good")

        // Closing one forwarded connection frees its place.
        held[0].close()
        try await held[0].channel.closeFuture.get()
        var readmitted: String?
        for _ in 0..<50 where readmitted == nil {
            let (raw, _, greeting) = try await open(port: port, headers: "X-Forwarded-For: 203.0.113.7\r\n")
            readmitted = greeting
            held.append(raw)
            if greeting == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(readmitted == "203.0.113.7")
        for raw in held + [other, spoofer] { raw.close() }
        await server.shutdown()
    }

    // MARK: Admission hook

    /// The captcha page's side: tokens it issued, each good once.
    final class CaptchaTokens: Sendable {
        private let issued = NIOLockedValueBox(Set<String>())
        func issue() -> String {
            let token = String(UInt64.random(in: 1...UInt64.max), radix: 36)
            issued.withLockedValue { _ = $0.insert(token) }
            return token
        }
        func redeem(_ token: String) -> Bool { issued.withLockedValue { $0.remove(token) != nil } }
    }

    /// The documented example: beyond a soft limit of 3 connections per address, a token from the
    /// captcha page is required; the hard limit (5) still answers 429.
    @Test func captchaTokenRequiredOverASoftLimit() async throws {
        let tokens = CaptchaTokens()
        let seen = NIOLockedValueBox<[String]>([])
        let admission: AdmissionHook = { request in
            seen.withLockedValue { $0.append("\(request.path) \(request.connectionsFromAddress) \(request.clientAddress?.ipAddress ?? "?")") }
            guard request.connectionsFromAddress > 3 else { return .accept }
            if let token = request.queryItem("token"), tokens.redeem(token) { return .accept }
            return .challenge(AdmissionChallenge(
                reason: "too many connections from your address: solve the captcha at /captcha",
                headers: ["WWW-Authenticate": #"Captcha realm="duplex", url="/captcha""#]))
        }
        let (server, port) = try await greetingServer(.init(limits: ServerLimits(maxConnectionsPerAddress: 5), admission: admission))
        var held: [RawTCPClient] = []
        for _ in 0..<3 {
            let (raw, status, _) = try await open(port: port, path: "/live")
            #expect(status == "HTTP/1.1 101 Switching Protocols")
            held.append(raw)
        }
        let (_, challenged, _) = try await open(port: port, path: "/live")
        #expect(challenged.statusLine == "HTTP/1.1 401 Unauthorized")
        #expect(challenged.contains("\r\nWWW-Authenticate: Captcha realm=\"duplex\", url=\"/captcha\"\r\n"))
        #expect(challenged.hasSuffix("solve the captcha at /captcha\n"))
        let (_, forged, _) = try await open(port: port, path: "/live?token=forged")
        #expect(forged.statusLine == "HTTP/1.1 401 Unauthorized")

        let token = tokens.issue()
        let (withToken, status, greeting) = try await open(port: port, path: "/live?x=1&token=\(token)")
        #expect(status == "HTTP/1.1 101 Switching Protocols")
        #expect(greeting == "127.0.0.1")
        held.append(withToken)
        let (_, reused, _) = try await open(port: port, path: "/live?token=\(token)")
        #expect(reused.statusLine == "HTTP/1.1 401 Unauthorized", "a token is good once")

        let (another, _, _) = try await open(port: port, path: "/live?token=\(tokens.issue())")
        held.append(another)
        let (_, hard, _) = try await open(port: port, path: "/live?token=\(tokens.issue())")
        #expect(hard.statusLine == "HTTP/1.1 429 Too Many Requests", "the hard limit comes before the hook")
        #expect(seen.withLockedValue { $0.first } == "/live 1 127.0.0.1")
        for raw in held { raw.close() }
        await server.shutdown()
    }

    @Test func rejectAndASlowHookLeaveOthersAlone() async throws {
        let admission: AdmissionHook = { request in
            switch request.path {
            case "/banned": return .reject(status: 451, reason: "not available here")
            case "/slow":
                try? await Task.sleep(for: .milliseconds(300))
                return .accept
            case "/stuck":
                try? await Task.sleep(for: .seconds(30))
                return .accept
            case "/odd": return .reject(status: 200, reason: "a refusal must be an error status")
            default: return .accept
            }
        }
        // A handshake timeout with room for a loaded machine; the stuck hook would hold for 30 s.
        let (server, port) = try await greetingServer(.init(handshakeTimeout: .seconds(3), admission: admission))
        let good = try await talker(port: port)
        let (_, banned, _) = try await open(port: port, path: "/banned")
        #expect(banned.statusLine == "HTTP/1.1 451 Unavailable For Legal Reasons")
        #expect(banned.hasSuffix("\r\n\r\nnot available here\n"))
        let (_, odd, _) = try await open(port: port, path: "/odd")
        #expect(odd.statusLine == "HTTP/1.1 403 Forbidden")

        // A hook that takes its time holds only its own connection.
        async let slow = open(port: port, path: "/slow")
        try await good.exchange(count: 20, tag: "while slow")
        let (slowClient, slowStatus, _) = try await slow
        #expect(slowStatus == "HTTP/1.1 101 Switching Protocols")
        slowClient.close()

        // One that never answers is cut off by the handshake timeout.
        let stuck = try await RawTCPClient.connect(port: port)
        try await stuck.send(upgradeRequest(path: "/stuck"))
        let start = ContinuousClock.now
        let answer = try await stuck.receivedUntilClosed(timeout: .seconds(15))
        #expect(ContinuousClock.now - start < .seconds(12))
        #expect(!String(buffer: answer).contains(" 101 "))
        try await good.exchange(count: 5, tag: "after")
        await server.shutdown()
    }
}
