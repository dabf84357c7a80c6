public import Dispatch
public import NIOCore
import NIOConcurrencyHelpers

/// A WebSocket client with the browser's interface (the WHATWG `WebSocket`), for code and people
/// that know it: `readyState`, `onopen`/`onmessage`/`onerror`/`onclose`, `addEventListener`,
/// `send`, `bufferedAmount`, `close(code:reason:)`.
///
/// ```swift
/// let ws = try WebSocket("wss://example.com/chat", protocols: ["chat"])
/// ws.onopen = { _ in try? ws.send("hello") }
/// ws.onmessage = { event in print(event.data) }
/// ws.onclose = { event in print("closed", event.code, event.reason, event.wasClean) }
/// ```
///
/// It is built on the async API (``WebSocketClient/connect(to:configuration:eventLoopGroup:logger:)``):
/// connecting, reading and writing happen in tasks; events are delivered one at a time, in the
/// browser's order — `open` before any `message`; on a failure `error` then `close`; `close` last —
/// on the ``Delivery`` chosen at creation (a serial queue of its own by default).
public final class WebSocket: Sendable {
    /// The connection's state, numbered as in browsers.
    public enum ReadyState: Int, Sendable {
        case connecting = 0
        case open = 1
        case closing = 2
        case closed = 3
    }

    /// The type binary messages are delivered as (the browser's `binaryType`).
    public enum BinaryType: Sendable {
        /// `ByteBuffer`, with no copy. The default.
        case byteBuffer
        /// `[UInt8]`.
        case bytes
    }

    /// A message's data.
    public enum MessageData: Sendable, Hashable {
        case text(String)
        case byteBuffer(ByteBuffer)
        case bytes([UInt8])
    }

    /// The events, each with what a browser's carries.
    public enum Event: Sendable {
        case open
        case message(MessageData)
        /// The connection failed; `close` follows.
        case error(any Error)
        case close(code: UInt16, reason: String, wasClean: Bool)
    }

    /// The event types, for ``addEventListener(_:_:)``.
    public enum EventType: Sendable, Hashable {
        case open, message, error, close
    }

    /// The errors the browser's interface throws.
    public enum DOMError: Error, Sendable, Hashable, CustomStringConvertible {
        /// `send` before the connection is open (the browser's `InvalidStateError`).
        case invalidState
        /// A close code other than 1000 or 3000–4999 (`InvalidAccessError`).
        case invalidAccess(UInt16)
        /// A bad URL, a duplicated or invalid subprotocol, or a close reason over 123 bytes (`SyntaxError`).
        case syntax(String)
        /// While reconnecting: the message would take the queue past ``Reconnection/maxQueuedBytes``.
        /// (Not a browser error: browsers do not reconnect.)
        case queueFull(limit: Int)

        public var description: String {
            switch self {
            case .invalidState: "InvalidStateError: the connection is not open yet"
            case .invalidAccess(let code): "InvalidAccessError: close code \(code) is neither 1000 nor in 3000-4999"
            case .syntax(let reason): "SyntaxError: \(reason)"
            case .queueFull(let limit): "the queue of messages waiting for a reconnection is full (\(limit) bytes)"
            }
        }
    }

    /// Where events run.
    public enum Delivery: Sendable {
        /// On a serial dispatch queue.
        case queue(DispatchQueue)
        /// Through a function that runs each job in order (an executor, an actor's queue, a run loop).
        case custom(@Sendable (@escaping @Sendable () -> Void) -> Void)
    }

    /// A registered listener, to remove it.
    public struct ListenerToken: Sendable, Hashable {
        fileprivate let id: Int
    }

    public typealias Listener = @Sendable (Event) -> Void

    /// Opt-in reconnection after a lost connection, with exponential backoff and jitter.
    ///
    /// After a close that is not the application's own and not a refusal by the server (see
    /// ``shouldReconnect``), `readyState` goes back to `connecting` and the socket tries again after
    /// `initialDelay`, then twice as long each time up to `maxDelay`, each delay shortened by a random
    /// part of up to `jitter` so that clients dropped together do not come back together. Every
    /// connection delivers its own `open` and `close` events (a failed attempt delivers `error`), so
    /// rejoining rooms or resubscribing belongs in `onopen`; `prepare` can change the configuration
    /// before each attempt (a fresh token, say).
    ///
    /// Messages sent while reconnecting are queued, up to ``maxQueuedBytes``, and sent once the next
    /// `onopen` handlers have run; past the bound `send` throws ``DOMError/queueFull(limit:)``. Before
    /// the first open, `send` throws ``DOMError/invalidState`` as in a browser.
    public struct Reconnection: Sendable {
        /// The first delay. Default 0.5 s.
        public var initialDelay: TimeAmount
        /// The longest delay. Default 30 s.
        public var maxDelay: TimeAmount
        /// The fraction of each delay that is random, 0 to 1. Default 0.5.
        public var jitter: Double
        /// Attempts in a row before giving up; nil (the default) never gives up.
        public var maxAttempts: Int?
        /// The bytes of messages held while disconnected. Default 1 MiB; 0 refuses every send.
        public var maxQueuedBytes: Int
        /// Whether a close calls for another attempt. Default: yes unless the server refused
        /// (1002 protocol error, 1003, 1007, 1008 policy, 1009 too big, 1010) or closed normally (1000).
        public var shouldReconnect: @Sendable (CloseInfo) -> Bool
        /// Called before each new attempt with the configuration to use; returns the one to use.
        public var prepare: (@Sendable (WebSocketClient.Configuration) async -> WebSocketClient.Configuration)?

        public init(initialDelay: TimeAmount = .milliseconds(500), maxDelay: TimeAmount = .seconds(30), jitter: Double = 0.5,
                    maxAttempts: Int? = nil, maxQueuedBytes: Int = 1 << 20,
                    shouldReconnect: @escaping @Sendable (CloseInfo) -> Bool = Reconnection.reconnectsUnlessRefused,
                    prepare: (@Sendable (WebSocketClient.Configuration) async -> WebSocketClient.Configuration)? = nil) {
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
            self.jitter = min(1, max(0, jitter))
            self.maxAttempts = maxAttempts
            self.maxQueuedBytes = maxQueuedBytes
            self.shouldReconnect = shouldReconnect
            self.prepare = prepare
        }

        /// The default ``shouldReconnect``.
        public static let reconnectsUnlessRefused: @Sendable (CloseInfo) -> Bool = { info in
            ![1000, 1002, 1003, 1007, 1008, 1009, 1010].contains(info.code.rawValue)
        }

        /// The delay before attempt `attempt` (0 for the first retry).
        func delay(attempt: Int) -> TimeAmount {
            let base = min(Double(maxDelay.nanoseconds), Double(initialDelay.nanoseconds) * pow2(attempt))
            return .nanoseconds(Int64(base * (1 - jitter * Double.random(in: 0..<1))))
        }

        private func pow2(_ exponent: Int) -> Double {
            exponent >= 62 ? .greatestFiniteMagnitude : Double(1 << exponent)
        }
    }

    private struct State {
        var readyState = ReadyState.connecting
        var subprotocol = ""
        var extensions = ""
        var binaryType = BinaryType.byteBuffer
        var handlers: [EventType: Listener] = [:]
        var listeners: [(token: ListenerToken, type: EventType, listener: Listener)] = []
        var nextListener = 0
        var outbound: WebSocketOutbound?
        var sender: AsyncStream<(WebSocketMessage, Int)>.Continuation?
        /// Bytes given to `send` and not yet handed to the connection.
        var pendingBytes = 0
        var closeRequest: (code: CloseCode, reason: String)?
        /// Whether a connection has been open (so a disconnection is a reconnection).
        var hasOpened = false
        /// Messages sent while reconnecting, and their bytes.
        var queued: [(WebSocketMessage, Int)] = []
        var queuedBytes = 0
        /// The task waiting out a backoff delay, cancelled by `close()`.
        var backoff: Task<Void, any Error>?
    }

    /// The URL given at creation.
    public let url: String
    private let state = NIOLockedValueBox(State())
    private let delivery: Delivery
    private let reconnection: Reconnection?

    /// Creates the socket and starts connecting; set the handlers right away.
    /// - Parameters:
    ///   - url: A `ws://` or `wss://` URL.
    ///   - protocols: Subprotocols to offer, in order of preference.
    ///   - configuration: The client's settings (TLS, compression, heartbeat, headers…); `protocols`
    ///     replaces its subprotocols.
    ///   - delivery: Where events run. Default: a serial queue of this socket's own.
    ///   - reconnection: How to reconnect after a lost connection, or nil (the default) for a
    ///     browser's behaviour: closed is closed.
    /// - Throws: ``DOMError/syntax(_:)`` for a bad URL or subprotocol list, as a browser does.
    public init(_ url: String, protocols: [String] = [], configuration: WebSocketClient.Configuration = .init(),
                delivery: Delivery = .queue(DispatchQueue(label: "duplex.websocket")),
                reconnection: Reconnection? = nil) throws(DOMError) {
        do {
            _ = try WebSocketURL(url)
        } catch {
            throw .syntax("invalid WebSocket URL \(url)")
        }
        guard Set(protocols).count == protocols.count else { throw .syntax("duplicated subprotocol") }
        guard protocols.allSatisfy(ClientHandshake.isValidSubprotocol) else {
            throw .syntax("invalid subprotocol")
        }
        self.url = url
        self.delivery = delivery
        self.reconnection = reconnection
        var configuration = configuration
        configuration.subprotocols = protocols
        Task { await self.run(configuration) }
    }

    // MARK: The browser's properties

    /// The connection's state.
    public var readyState: ReadyState { state.withLockedValue { $0.readyState } }
    /// The subprotocol the server selected, or "" (the browser's `protocol`).
    public var `protocol`: String { state.withLockedValue { $0.subprotocol } }
    /// The extensions the server accepted, as the `Sec-WebSocket-Extensions` value, or "".
    public var extensions: String { state.withLockedValue { $0.extensions } }
    /// The type binary messages are delivered as; it applies to messages delivered after it is set.
    public var binaryType: BinaryType {
        get { state.withLockedValue { $0.binaryType } }
        set { state.withLockedValue { $0.binaryType = newValue } }
    }

    /// Bytes accepted by `send` and not yet written to the socket; 0 once all are.
    public var bufferedAmount: Int {
        state.withLockedValue { $0.pendingBytes + ($0.outbound?.bufferedAmount ?? 0) }
    }

    /// Called once open.
    public var onopen: Listener? {
        get { handler(.open) }
        set { setHandler(.open, newValue) }
    }
    /// Called for each message.
    public var onmessage: Listener? {
        get { handler(.message) }
        set { setHandler(.message, newValue) }
    }
    /// Called when the connection fails (before `onclose`).
    public var onerror: Listener? {
        get { handler(.error) }
        set { setHandler(.error, newValue) }
    }
    /// Called once closed.
    public var onclose: Listener? {
        get { handler(.close) }
        set { setHandler(.close, newValue) }
    }

    /// Adds a listener for one event type; it runs after the `on…` handler, in the order added.
    @discardableResult
    public func addEventListener(_ type: EventType, _ listener: @escaping Listener) -> ListenerToken {
        state.withLockedValue { state in
            let token = ListenerToken(id: state.nextListener)
            state.nextListener += 1
            state.listeners.append((token, type, listener))
            return token
        }
    }

    /// Removes a listener added with ``addEventListener(_:_:)``.
    public func removeEventListener(_ token: ListenerToken) {
        state.withLockedValue { $0.listeners.removeAll { $0.token == token } }
    }

    // MARK: The browser's methods

    /// Sends a text message.
    /// - Throws: ``DOMError/invalidState`` while connecting. Once closing or closed, the message is
    ///   dropped (and counted in ``bufferedAmount``), as in a browser.
    public func send(_ text: String) throws(DOMError) {
        try enqueue(.text(text), size: text.utf8.count)
    }

    /// Sends a binary message: a byte array, a file's contents, any bytes.
    /// - Throws: as ``send(_:)-(String)``.
    public func send(_ bytes: some Sequence<UInt8>) throws(DOMError) {
        let buffer = ByteBuffer(bytes: bytes)
        try enqueue(.binary(buffer), size: buffer.readableBytes)
    }

    /// Sends a binary message without copying.
    /// - Throws: as ``send(_:)-(String)``.
    public func send(_ buffer: ByteBuffer) throws(DOMError) {
        try enqueue(.binary(buffer), size: buffer.readableBytes)
    }

    /// Starts the closing handshake, or gives up connecting.
    /// - Parameters:
    ///   - code: 1000 or 3000–4999; nil sends a close frame without a code.
    ///   - reason: At most 123 bytes of UTF-8.
    /// - Throws: ``DOMError/invalidAccess(_:)`` or ``DOMError/syntax(_:)``, as a browser does.
    public func close(code: UInt16? = nil, reason: String = "") throws(DOMError) {
        if let code, code != 1000, !(3000...4999).contains(code) { throw .invalidAccess(code) }
        guard reason.utf8.count <= 123 else { throw .syntax("close reason of \(reason.utf8.count) bytes exceeds 123") }
        let closeCode = code.map { CloseCode(rawValue: $0) } ?? .normalClosure
        state.withLockedValue { state in
            switch state.readyState {
            case .closing, .closed:
                break
            case .connecting:
                state.readyState = .closing
                state.closeRequest = (closeCode, reason)
                state.backoff?.cancel()
            case .open:
                // The writer sends what `send` accepted before, then the close frame.
                state.readyState = .closing
                state.closeRequest = (closeCode, reason)
                state.sender?.finish()
            }
        }
    }

    // MARK: Inside

    private func handler(_ type: EventType) -> Listener? {
        state.withLockedValue { $0.handlers[type] }
    }

    private func setHandler(_ type: EventType, _ listener: Listener?) {
        state.withLockedValue { $0.handlers[type] = listener }
    }

    private func enqueue(_ message: WebSocketMessage, size: Int) throws(DOMError) {
        let accepted = state.withLockedValue { state -> Bool? in
            switch state.readyState {
            case .connecting where state.hasOpened:
                guard let limit = reconnection?.maxQueuedBytes, state.queuedBytes + size <= limit else {
                    return false
                }
                state.queued.append((message, size))
                state.queuedBytes += size
                state.pendingBytes += size
                return true
            case .connecting:
                return nil
            case .open:
                state.pendingBytes += size
                state.sender?.yield((message, size))
                return true
            case .closing, .closed:
                state.pendingBytes += size
                return true
            }
        }
        guard let accepted else { throw .invalidState }
        guard accepted else { throw .queueFull(limit: reconnection?.maxQueuedBytes ?? 0) }
    }

    /// Runs the handler and the listeners of `type` on the delivery queue, then `after`.
    private func deliver(_ event: Event, type: EventType, after: (@Sendable () -> Void)? = nil) {
        let job: @Sendable () -> Void = { [self] in
            let (handler, listeners) = state.withLockedValue { ($0.handlers[type], $0.listeners.filter { $0.type == type }) }
            handler?(event)
            for entry in listeners { entry.listener(event) }
            after?()
        }
        switch delivery {
        case .queue(let queue): queue.async(execute: job)
        case .custom(let run): run(job)
        }
    }

    private func run(_ initial: WebSocketClient.Configuration) async {
        var configuration = initial
        var failures = 0
        while true {
            if failures > 0 || state.withLockedValue({ $0.hasOpened }) {
                guard await waitBeforeRetry(attempt: failures) else { return finishClosed(CloseInfo(code: .abnormalClosure, wasClean: false)) }
                if let prepare = reconnection?.prepare { configuration = await prepare(configuration) }
            }
            let connection: WebSocketClientConnection
            do {
                connection = try await WebSocketClient.connect(to: url, configuration: configuration)
            } catch {
                deliver(.error(error), type: .error)
                failures += 1
                if reconnection == nil || state.withLockedValue({ $0.closeRequest != nil }) || failures > (reconnection?.maxAttempts ?? .max) {
                    return finishClosed(CloseInfo(code: .abnormalClosure, wasClean: false))
                }
                continue
            }
            failures = 0
            let info = await serve(connection)
            let again = state.withLockedValue { state -> Bool in
                let retry = reconnection.map { state.closeRequest == nil && $0.shouldReconnect(info) } ?? false
                state.readyState = retry ? .connecting : .closed
                // Messages sent on the lost connection and not yet written are gone with it.
                if retry { state.pendingBytes = state.queuedBytes }
                state.sender = nil
                state.outbound = nil
                return retry
            }
            deliver(.close(code: info.code.rawValue, reason: info.reason, wasClean: info.wasClean), type: .close)
            guard again else { return }
        }
    }

    /// Waits out the backoff before attempt `attempt`; false when `close()` came meanwhile.
    private func waitBeforeRetry(attempt: Int) async -> Bool {
        guard let reconnection else { return false }
        let delay = reconnection.delay(attempt: attempt)
        let wait = Task { try await Task.sleep(nanoseconds: UInt64(max(0, delay.nanoseconds))) }
        let closing = state.withLockedValue { state in
            state.backoff = wait
            return state.closeRequest != nil
        }
        if closing { wait.cancel() }
        let waited = (try? await wait.value) != nil
        state.withLockedValue { $0.backoff = nil }
        return waited && state.withLockedValue { $0.closeRequest == nil }
    }

    /// The socket is closed for good: the last `close` event.
    private func finishClosed(_ info: CloseInfo) {
        state.withLockedValue { $0.readyState = .closed }
        deliver(.close(code: info.code.rawValue, reason: info.reason, wasClean: info.wasClean), type: .close)
    }

    /// One open connection, from `open` to its end; returns how it closed.
    private func serve(_ connection: WebSocketClientConnection) async -> CloseInfo {
        let (sends, sender) = AsyncStream.makeStream(of: (WebSocketMessage, Int).self)
        let closeRequest = state.withLockedValue { state in
            state.outbound = connection.outbound
            state.subprotocol = connection.context.subprotocol ?? ""
            state.extensions = WebSocketExtension.format(connection.context.extensions)
            state.sender = sender
            if state.closeRequest == nil {
                state.readyState = .open
                state.hasOpened = true
            }
            return state.closeRequest
        }
        if let closeRequest {
            // close() while connecting: close this connection at once.
            _ = try? await connection.outbound.close(code: closeRequest.code, reason: closeRequest.reason)
            sender.finish()
            let info = CloseInfo(code: .abnormalClosure, wasClean: false)
            deliver(.error(ConnectionClosedAbnormally(info: info)), type: .error)
            return info
        }
        // What was queued while reconnecting goes out after the open handlers (which may rejoin first).
        deliver(.open, type: .open, after: { [self] in
            state.withLockedValue { state in
                for item in state.queued { state.sender?.yield(item) }
                state.queued.removeAll()
                state.queuedBytes = 0
            }
        })
        let writer = Task {
            for await (message, size) in sends {
                try? await connection.outbound.write(message)
                state.withLockedValue { $0.pendingBytes -= size }
            }
            // The stream ends when close() was called (or the connection ended).
            if let request = state.withLockedValue({ $0.closeRequest }) {
                _ = try? await connection.outbound.close(code: request.code, reason: request.reason)
            }
        }
        for await message in connection.inbound {
            let (open, binaryType) = state.withLockedValue { ($0.readyState == .open, $0.binaryType) }
            guard open else { continue }
            let data: MessageData =
                switch message.kind {
                case .text: .text(String(buffer: message.data))
                case .binary: binaryType == .bytes ? .bytes(Array(message.data.readableBytesView)) : .byteBuffer(message.data)
                }
            deliver(.message(data), type: .message)
        }
        let info = await connection.outbound.closeInfo()
        sender.finish()
        writer.cancel()
        if !info.wasClean, let error = info.error {
            deliver(.error(error), type: .error)
        } else if !info.wasClean, info.code == .abnormalClosure || info.code == .internalError {
            deliver(.error(ConnectionClosedAbnormally(info: info)), type: .error)
        }
        return info
    }
}

/// The error event of a connection that ended without a clean closing handshake.
public struct ConnectionClosedAbnormally: Error, Sendable, CustomStringConvertible {
    /// How it ended.
    public let info: CloseInfo
    public var description: String { "connection closed abnormally: \(info)" }
}
