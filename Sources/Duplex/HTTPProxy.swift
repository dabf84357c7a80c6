#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DuplexCore
import NIOCore

/// An HTTP proxy that a client tunnels through with `CONNECT` (RFC 9110 §9.3.6).
public struct HTTPProxy: Sendable, Hashable {
    /// The proxy's host name or address.
    public var host: String
    /// The proxy's port.
    public var port: Int
    /// The `Proxy-Authorization` value to send (`Basic dXNlcjpwYXNz`), if the proxy needs one.
    public var authorization: String?

    public init(host: String, port: Int, authorization: String? = nil) {
        self.host = host
        self.port = port
        self.authorization = authorization
    }

    /// The proxy the environment names for `url`, as curl and most tools read it: `HTTPS_PROXY` for
    /// `wss://`, `HTTP_PROXY` for `ws://` (lower-case names too; then `ALL_PROXY`), unless `NO_PROXY`
    /// matches the host (`*`, a domain and its subdomains, with or without a leading dot, or an
    /// address). Loopback hosts (`localhost`, 127.0.0.0/8, `::1`) are never proxied. A
    /// `user:password@` in the proxy URL becomes Basic authorization.
    /// - Parameter environment: The variables; `ProcessInfo`-style, passed in so it can be tested.
    public static func fromEnvironment(for url: String, environment: [String: String]) -> HTTPProxy? {
        guard let target = try? WebSocketURL(url) else { return nil }
        func variable(_ name: String) -> String? {
            (environment[name] ?? environment[name.lowercased()]).flatMap { $0.isEmpty ? nil : $0 }
        }
        let host = target.host.lowercased()
        if host == "localhost" || host.hasSuffix(".localhost") || host == "::1" || host.hasPrefix("127.") { return nil }
        if let noProxy = variable("NO_PROXY") {
            for entry in noProxy.split(separator: ",").map({ $0.trimmingSpaces.lowercased() }) where !entry.isEmpty {
                let domain = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
                let bare = domain.split(separator: ":").count == 2 && !domain.contains("[") ? String(domain.split(separator: ":")[0]) : domain
                if entry == "*" || host == bare || host.hasSuffix("." + bare) { return nil }
            }
        }
        guard let value = variable(target.isSecure ? "HTTPS_PROXY" : "HTTP_PROXY") ?? variable("ALL_PROXY") else { return nil }
        return parse(value)
    }

    /// Parses `http://[user:password@]host[:port][/]` or a bare `host:port`.
    static func parse(_ value: String) -> HTTPProxy? {
        var rest = Substring(value)
        if let scheme = rest.firstRange(of: "://") {
            guard rest[..<scheme.lowerBound].lowercased() == "http" else { return nil }
            rest = rest[scheme.upperBound...]
        }
        rest = rest.prefix { $0 != "/" }
        var authorization: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = percentDecoded(rest[..<at])
            authorization = "Basic " + Base64.encode(credentials.utf8)
            rest = rest[rest.index(after: at)...]
        }
        var host = rest
        var port = 80
        if rest.hasPrefix("[") {
            guard let end = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<end]
            let after = rest[rest.index(after: end)...]
            if after.hasPrefix(":") { guard let value = Int(after.dropFirst()) else { return nil }; port = value }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return HTTPProxy(host: String(host), port: port, authorization: authorization)
    }
}

/// Opens a `CONNECT` tunnel, then hands the channel to the handlers that speak through it.
final class ProxyConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: HTTPProxy
    private let authority: String
    private let timeout: TimeAmount
    private let onTunnel: (ChannelHandlerContext) throws -> Void
    private let onFailure: @Sendable (any Error) -> Void
    private var parser = HTTPHeadParser(maxHeadSize: 16 * 1024)
    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var done = false

    /// - Parameters:
    ///   - authority: `host:port` to connect to, IPv6 in brackets.
    ///   - onTunnel: adds the handlers for the tunnelled connection, on the event loop.
    init(proxy: HTTPProxy, authority: String, timeout: TimeAmount,
         onTunnel: @escaping (ChannelHandlerContext) throws -> Void, onFailure: @escaping @Sendable (any Error) -> Void) {
        self.proxy = proxy
        self.authority = authority
        self.timeout = timeout
        self.onTunnel = onTunnel
        self.onFailure = onFailure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        var fields: HTTPFields = ["Host": authority]
        if let authorization = proxy.authorization { fields.add("Proxy-Authorization", authorization) }
        var request = context.channel.allocator.buffer(capacity: 256)
        HTTPRequestHead(method: "CONNECT", target: authority, headers: fields).write(into: &request)
        context.writeAndFlush(NIOAny(request), promise: nil)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            fail(context: context, WebSocketClientError.proxyFailed("no answer to CONNECT within the handshake timeout"))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        let head: HTTPResponseHead?
        do {
            head = try parser.parseResponse(&buffer)
        } catch {
            return fail(context: context, WebSocketClientError.proxyFailed("malformed answer to CONNECT: \(error)"))
        }
        guard let head else { return }
        guard (200..<300).contains(head.status) else {
            return fail(context: context, WebSocketClientError.proxyFailed("the proxy answered CONNECT with \(head.status) \(head.reason)"))
        }
        done = true
        timer?.cancel()
        do {
            try onTunnel(context)
        } catch {
            return fail(context: context, error)
        }
        let leftover = buffer
        buffer = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if leftover.readableBytes > 0 { context.fireChannelRead(NIOAny(leftover)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { fail(context: context, WebSocketClientError.proxyFailed("the proxy closed the connection")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done { fail(context: context, error) } else { context.fireErrorCaught(error) }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        guard !done else { return }
        done = true
        timer?.cancel()
        onFailure(error)
        context.close(promise: nil)
    }
}

/// The proxy variables of this process's environment.
enum ProcessEnvironment {
    static var variables: [String: String] {
        var variables: [String: String] = [:]
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"] {
            for spelling in [name, name.lowercased()] {
                if let value = getenv(spelling) { variables[spelling] = String(cString: value) }
            }
        }
        return variables
    }
}
