public import DuplexCore
public import NIOCore

/// A plain HTTP response, for requests to a WebSocket server that are not upgrades: a page, a
/// health check, metrics. The connection closes once it is sent.
public struct HTTPResponse: Sendable {
    /// The status code.
    public var status: Int
    /// Response fields; `Content-Length` and `Connection: close` are added.
    public var headers: HTTPFields
    /// The body.
    public var body: ByteBuffer

    public init(status: Int = 200, headers: HTTPFields = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response of `contentType` with `text` as its body.
    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: ByteBuffer(string: text))
    }

    /// The response head and body as written to the wire (with `Content-Length` and `Connection: close`).
    func wireForm(method: String) -> (head: HTTPResponseHead, body: ByteBuffer) {
        var headers = self.headers
        headers.replaceOrAdd("Content-Length", String(body.readableBytes))
        headers.replaceOrAdd("Connection", "close")
        return (HTTPResponseHead(status: status, headers: headers), method == "HEAD" ? ByteBuffer() : body)
    }
}

/// Answers a plain HTTP request (one without `Upgrade: websocket`), or returns nil to let the server
/// answer 426 Upgrade Required. It runs off the event loop; the handshake timeout bounds it.
public typealias HTTPResponder = @Sendable (HTTPRequestHead) async -> HTTPResponse?
