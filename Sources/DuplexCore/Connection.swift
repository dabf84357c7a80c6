public import NIOCore

/// The WebSocket protocol after the opening handshake, as a state machine over bytes (sans-I/O).
///
/// A transport feeds it what it reads (``receive(_:)``, ``receiveEOF()``), takes the events it produces
/// (``nextEvent()``), and writes the frames it produces (``nextOutboundFrame()``): the application's
/// messages, and the protocol's own replies (pongs, the echoed close). It owns reassembly of fragmented
/// messages, incremental UTF-8 validation, limits, and the closing handshake:
///
/// `open` → (`close` sent) `closing` → (peer's close received, or a timeout) `closed`, and
/// `open` → (peer's close received and echoed, or the peer broke the protocol, or EOF) `closed`.
///
/// When ``ConnectionEvent/closed(_:)`` comes out, the transport writes the remaining outbound frames and
/// then closes TCP: a server at once, a client after giving the server a moment to close first.
/// Time enters only as arguments, so the close timeout is testable without sleeping.
///
/// With a negotiated ``MessageCompression`` (permessage-deflate), RSV1 marks a compressed message on
/// its first frame; inbound messages are inflated frame by frame within ``Configuration/maxMessageSize``,
/// and their text is validated as it is inflated. A connection owns that codec's state, so it is not
/// `Sendable`: it lives on one event loop.
public struct Connection {
    /// Which end of the connection this is. It decides who masks.
    public enum Role: Sendable, Hashable {
        /// The accepting end: expects masked frames, sends unmasked ones.
        case server
        /// The connecting end: sends masked frames, expects unmasked ones.
        case client
    }

    /// Limits and timings of a connection. `.init()` is safe for an untrusted peer.
    public struct Configuration: Sendable, Hashable {
        /// The largest frame payload accepted; a larger one closes with 1009. Default 16 MiB.
        public var maxFrameSize: Int
        /// The largest message accepted, all its fragments together; a larger one closes with 1009.
        /// Default 16 MiB.
        public var maxMessageSize: Int
        /// How long to wait for the peer's close frame after sending ours. Default 5 seconds.
        public var closeTimeout: TimeAmount
        /// Outbound messages larger than this are sent in fragments of this size; `nil` (the default)
        /// sends each message as one frame.
        public var outboundFragmentSize: Int?

        /// Creates a configuration; every parameter has a safe default.
        public init(maxFrameSize: Int = 16 << 20, maxMessageSize: Int = 16 << 20,
                    closeTimeout: TimeAmount = .seconds(5), outboundFragmentSize: Int? = nil) {
            self.maxFrameSize = maxFrameSize
            self.maxMessageSize = maxMessageSize
            self.closeTimeout = closeTimeout
            self.outboundFragmentSize = outboundFragmentSize
        }
    }

    /// This end's role.
    public let role: Role
    /// The limits in force.
    public let configuration: Configuration
    /// The state: ``ReadyState/open``, ``ReadyState/closing`` or ``ReadyState/closed``.
    public private(set) var readyState: ReadyState = .open
    /// When a close frame has been sent and the peer's is awaited: the instant after which the
    /// transport should call ``closeTimeoutExpired(now:)``.
    public private(set) var closeDeadline: NIODeadline?

    private var inbound = ByteBuffer()
    private var decoder: FrameDecoder
    private var events = FIFO<ConnectionEvent>()
    private var outbound = FIFO<OutboundFrame>()
    /// The message being reassembled from fragments (inflated as it arrives when compressed).
    private var fragmented: (kind: WebSocketMessage.Kind, data: ByteBuffer, compressed: Bool)?
    /// The negotiated per-message compression, if any.
    private let compression: (any MessageCompression)?
    private var utf8 = UTF8Validator()
    /// Whether the frame being decoded has passed the message-level checks already.
    private var frameStarted = false
    /// Payload bytes of the frame being decoded that have gone through `utf8` already.
    private var validatedInFrame = 0
    /// A close frame received, or a violation found, behind events the application has not taken yet.
    /// It takes effect once they are taken, so that the application can still answer them (an echo
    /// of a message that preceded the close in the same read is not refused).
    private var deferred: Deferred?
    /// A client's masking keys, fetched from the system's randomness a batch at a time.
    private var maskingKeys = MaskingKeys()

    private enum Deferred {
        case close(ByteBuffer)
        case failure(ProtocolError)
    }

    /// Creates the connection of one end, open, as after a successful opening handshake.
    /// - Parameters:
    ///   - role: which end this is.
    ///   - configuration: limits and timings.
    ///   - compression: the per-message compression the handshake agreed, if any; it claims RSV1.
    public init(role: Role, configuration: Configuration = .init(), compression: (any MessageCompression)? = nil) {
        self.role = role
        self.configuration = configuration
        self.compression = compression
        self.decoder = FrameDecoder(expectsMaskedFrames: role == .server, maxFrameSize: configuration.maxFrameSize,
                                    allowedReservedBits: compression == nil ? 0 : 0b100)
    }

    /// Whether a per-message compression extension is in force.
    public var isCompressionEnabled: Bool { compression != nil }

    // MARK: Input

    /// Processes bytes read from the peer. Events and replies become available through ``nextEvent()``
    /// and ``nextOutboundFrame()``. Bytes that arrive after the connection closed are ignored.
    public mutating func receive(_ bytes: ByteBuffer) {
        guard readyState != .closed, deferred == nil else { return }
        if inbound.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound.writeImmutableBuffer(bytes)
        }
        do {
            while readyState != .closed, deferred == nil, let output = try decoder.next(from: &inbound) {
                switch output {
                case .frame(let frame):
                    if !frameStarted { try startFrame(frame.header) }
                    frameStarted = false
                    try handle(frame)
                    validatedInFrame = 0
                case .partial(let header, let bytes, let offset):
                    if offset == 0 && !frameStarted {
                        try startFrame(header)
                        frameStarted = true
                    }
                    if isText(header), !isCompressed(header), !utf8.validate(bytes) { throw ProtocolError.invalidUTF8 }
                    validatedInFrame = offset + bytes.readableBytes
                }
            }
        } catch let error as ProtocolError {
            if events.isEmpty { fail(error) } else { deferred = .failure(error) }
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
        // Do not keep a consumed read buffer alive: an idle connection holds no inbound memory.
        if inbound.readableBytes == 0 { inbound = ByteBuffer() }
    }

    /// Processes the end of the peer's byte stream. A connection that was not closed cleanly before
    /// closes now with ``CloseCode/abnormalClosure``.
    public mutating func receiveEOF() {
        guard readyState != .closed else { return }
        deferred = nil
        finish(CloseInfo(code: .abnormalClosure, reason: "connection closed without a close frame", wasClean: false))
    }

    /// Ends a closing handshake the peer never answered: once `now` is past ``closeDeadline``, the
    /// connection closes with ``CloseCode/abnormalClosure``.
    /// - Returns: whether the connection closed because of the timeout.
    @discardableResult
    public mutating func closeTimeoutExpired(now: NIODeadline) -> Bool {
        guard readyState == .closing, let deadline = closeDeadline, now >= deadline else { return false }
        finish(CloseInfo(code: .abnormalClosure, reason: "close handshake timed out", wasClean: false))
        return true
    }

    /// Gives up on a peer that stopped answering (a heartbeat found no sign of life): queues a close
    /// frame with `code` and `reason` in case it still reads, and closes at once without waiting for
    /// its answer, with `wasClean` false. A reason over 123 bytes is dropped.
    public mutating func abandon(code: CloseCode = .internalError, reason: String) {
        guard readyState != .closed else { return }
        deferred = nil
        let reason = reason.utf8.count <= 123 ? reason : ""
        if readyState == .open, code.isValidOnWire { enqueueClose(code: code, reason: reason) }
        finish(CloseInfo(code: code, reason: reason, wasClean: false))
    }

    // MARK: Output

    /// The next event for the application, in the order the peer's frames produced them.
    public mutating func nextEvent() -> ConnectionEvent? {
        if events.isEmpty, let action = deferred {
            deferred = nil
            switch action {
            case .close(let payload):
                do { try handleClose(payload) } catch { fail(error) }
            case .failure(let error):
                fail(error)
            }
        }
        return events.popFirst()
    }

    /// The next frame to write to the peer, its payload masked when this is a client.
    public mutating func nextOutboundFrame() -> OutboundFrame? {
        guard let frame = outbound.popFirst() else { return nil }
        queuedOutboundBytes -= frame.header.encodedSize + frame.payload.readableBytes
        return frame
    }

    /// Whether frames are waiting in ``nextOutboundFrame()``.
    public var hasOutboundFrames: Bool { !outbound.isEmpty }

    /// The wire size (headers and payloads) of the frames waiting in ``nextOutboundFrame()``.
    public private(set) var queuedOutboundBytes = 0

    /// Queues a message to send, in fragments when ``Configuration/outboundFragmentSize`` is set.
    /// - Parameters:
    ///   - message: the message.
    ///   - compress: whether to compress it when compression was negotiated (the codec may still
    ///     send it uncompressed, for instance below its size threshold). Default `true`.
    /// - Throws: ``ConnectionError/notOpen(_:)`` unless the connection is open;
    ///   ``ConnectionError/compressionFailed(_:)`` if the codec fails.
    public mutating func send(_ message: WebSocketMessage, compress: Bool = true) throws(ConnectionError) {
        guard readyState == .open else { throw .notOpen(readyState) }
        let opcode: Opcode = message.kind == .text ? .text : .binary
        var data = message.data
        var rsv: UInt8 = 0
        if compress, let compression {
            do {
                if let compressed = try compression.compress(data) {
                    data = compressed
                    rsv = 0b100
                }
            } catch {
                throw .compressionFailed(error.description)
            }
        }
        guard let fragmentSize = configuration.outboundFragmentSize, fragmentSize > 0,
              data.readableBytes > fragmentSize else {
            enqueue(opcode: opcode, fin: true, rsv: rsv, payload: data)
            return
        }
        var first = true
        while data.readableBytes > 0 {
            let piece = data.readSlice(length: min(fragmentSize, data.readableBytes))!
            enqueue(opcode: first ? opcode : .continuation, fin: data.readableBytes == 0, rsv: first ? rsv : 0, payload: piece)
            first = false
        }
    }

    /// Queues one frame of a message the application fragments itself: the first with opcode `.text` or
    /// `.binary`, the rest `.continuation`, the last with `fin` set.
    /// - Throws: ``ConnectionError/notOpen(_:)`` unless the connection is open.
    public mutating func sendFragment(opcode: Opcode, fin: Bool, payload: ByteBuffer) throws(ConnectionError) {
        guard readyState == .open else { throw .notOpen(readyState) }
        precondition(!opcode.isControl, "sendFragment carries data frames only")
        enqueue(opcode: opcode, fin: fin, payload: payload)
    }

    /// Queues a ping.
    /// - Throws: ``ConnectionError/notOpen(_:)``, or ``ConnectionError/controlPayloadTooLong(_:)`` past 125 bytes.
    public mutating func sendPing(_ payload: ByteBuffer = ByteBuffer()) throws(ConnectionError) {
        try sendControl(.ping, payload)
    }

    /// Queues an unsolicited pong (a one-way heartbeat).
    /// - Throws: ``ConnectionError/notOpen(_:)``, or ``ConnectionError/controlPayloadTooLong(_:)`` past 125 bytes.
    public mutating func sendPong(_ payload: ByteBuffer = ByteBuffer()) throws(ConnectionError) {
        try sendControl(.pong, payload)
    }

    /// Starts the closing handshake: queues a close frame and waits for the peer's, at most until
    /// ``closeDeadline`` (`now` + ``Configuration/closeTimeout``). Does nothing when closing or closed.
    /// - Parameters:
    ///   - code: the status code, or `nil` to send a close frame with no code (reported as 1005).
    ///   - reason: a reason of at most 123 bytes of UTF-8.
    /// - Throws: ``ConnectionError/invalidCloseCode(_:)`` or ``ConnectionError/closeReasonTooLong(_:)``.
    public mutating func close(code: CloseCode? = .normalClosure, reason: String = "", now: NIODeadline) throws(ConnectionError) {
        guard readyState == .open else { return }
        if let code, !code.isValidOnWire { throw .invalidCloseCode(code) }
        if reason.utf8.count > 123 { throw .closeReasonTooLong(reason.utf8.count) }
        enqueueClose(code: code, reason: code == nil ? "" : reason)
        readyState = .closing
        closeDeadline = now + configuration.closeTimeout
    }

    // MARK: Internals

    private func isText(_ header: FrameHeader) -> Bool {
        header.opcode == .text || (header.opcode == .continuation && fragmented?.kind == .text)
    }

    /// Whether the frame belongs to a compressed message (RSV1 on the message's first frame).
    private func isCompressed(_ header: FrameHeader) -> Bool {
        header.opcode == .continuation ? fragmented?.compressed == true : header.rsv1
    }

    /// The message-level checks of a frame, as soon as its header is known.
    private mutating func startFrame(_ header: FrameHeader) throws(ProtocolError) {
        switch header.opcode {
        case .text, .binary:
            if fragmented != nil { throw .expectedContinuation }
            if header.payloadLength > configuration.maxMessageSize { throw .messageTooLarge(limit: configuration.maxMessageSize) }
            if header.opcode == .text { utf8.reset() }
        case .continuation:
            guard let fragmented else { throw .unexpectedContinuation }
            // RFC 7692 §6.1: RSV1 is set on the first frame of a compressed message only.
            if header.rsv1 { throw .reservedBitsSet(header.rsv) }
            if !fragmented.compressed, fragmented.data.readableBytes + header.payloadLength > configuration.maxMessageSize {
                throw .messageTooLarge(limit: configuration.maxMessageSize)
            }
        case .close, .ping, .pong:
            break
        }
    }

    private mutating func handle(_ frame: Frame) throws(ProtocolError) {
        switch frame.opcode {
        case .text, .binary, .continuation:
            let kind: WebSocketMessage.Kind
            if frame.opcode == .continuation { kind = fragmented!.kind } else { kind = frame.opcode == .text ? .text : .binary }
            if isCompressed(frame.header) {
                try inflate(frame, kind: kind)
                return
            }
            if kind == .text {
                let rest = frame.payload.getSlice(at: frame.payload.readerIndex + validatedInFrame,
                                                  length: frame.payload.readableBytes - validatedInFrame)!
                if !utf8.validate(rest) || (frame.fin && !utf8.isComplete) { throw .invalidUTF8 }
            }
            if frame.opcode == .continuation {
                fragmented!.data.writeImmutableBuffer(frame.payload)
                if frame.fin {
                    let message = WebSocketMessage(kind: kind, data: fragmented!.data)
                    fragmented = nil
                    events.append(.message(message))
                }
            } else if frame.fin {
                events.append(.message(WebSocketMessage(kind: kind, data: frame.payload)))
            } else {
                fragmented = (kind, frame.payload, false)
            }
        case .ping:
            if readyState == .open { enqueue(opcode: .pong, fin: true, payload: frame.payload) }
            events.append(.ping(frame.payload))
        case .pong:
            events.append(.pong(frame.payload))
        case .close:
            if events.isEmpty { try handleClose(frame.payload) } else { deferred = .close(frame.payload) }
        }
    }

    /// Inflates one frame of a compressed message into the message so far, validating new text.
    private mutating func inflate(_ frame: Frame, kind: WebSocketMessage.Kind) throws(ProtocolError) {
        var output: ByteBuffer
        if frame.opcode == .continuation {
            output = fragmented!.data
            fragmented!.data = ByteBuffer()  // one owner, so inflating appends in place
        } else {
            output = ByteBuffer()
        }
        let start = output.writerIndex
        try compression!.decompress(frame.payload, isFinal: frame.fin, into: &output, limit: configuration.maxMessageSize)
        if kind == .text {
            let inflated = output.getSlice(at: start, length: output.writerIndex - start)!
            if !utf8.validate(inflated) || (frame.fin && !utf8.isComplete) { throw .invalidUTF8 }
        }
        if frame.fin {
            fragmented = nil
            events.append(.message(WebSocketMessage(kind: kind, data: output)))
        } else {
            fragmented = (kind, output, true)
        }
    }

    private mutating func handleClose(_ payload: ByteBuffer) throws(ProtocolError) {
        var payload = payload
        var code = CloseCode.noStatusReceived
        var reason = ""
        if payload.readableBytes == 1 { throw .closePayloadTooShort }
        if let raw = payload.readInteger(as: UInt16.self) {
            code = CloseCode(rawValue: raw)
            guard code.isValidOnWire else { throw .invalidCloseCode(raw) }
            guard UTF8Validator.isValid(payload) else { throw .invalidUTF8 }
            reason = String(buffer: payload)
        }
        if readyState == .open {
            // The peer began closing: echo its code and finish.
            enqueueClose(code: code == .noStatusReceived ? nil : code, reason: "")
        }
        finish(CloseInfo(code: code, reason: reason, wasClean: true))
    }

    /// Fails the connection (RFC 6455 §7.1.7): a close frame with the error's code, then closed.
    private mutating func fail(_ error: ProtocolError) {
        if readyState == .open {
            enqueueClose(code: error.closeCode, reason: error.description)
        }
        finish(CloseInfo(code: error.closeCode, reason: error.description, wasClean: false, error: error))
    }

    private mutating func finish(_ info: CloseInfo) {
        readyState = .closed
        closeDeadline = nil
        fragmented = nil
        inbound = ByteBuffer()
        events.append(.closed(info))
    }

    private mutating func sendControl(_ opcode: Opcode, _ payload: ByteBuffer) throws(ConnectionError) {
        guard readyState == .open else { throw .notOpen(readyState) }
        guard payload.readableBytes <= 125 else { throw .controlPayloadTooLong(payload.readableBytes) }
        enqueue(opcode: opcode, fin: true, payload: payload)
    }

    private mutating func enqueueClose(code: CloseCode?, reason: String) {
        var payload = ByteBuffer()
        if let code {
            payload.reserveCapacity(2 + reason.utf8.count)
            payload.writeInteger(code.rawValue)
            // Reasons are cut at 123 bytes on a character boundary.
            var utf8 = Substring(reason).utf8
            while utf8.count > 123 { utf8 = Substring(utf8.dropLast()).utf8 }
            payload.writeBytes(utf8)
        }
        enqueue(opcode: .close, fin: true, payload: payload)
    }

    private mutating func enqueue(opcode: Opcode, fin: Bool, rsv: UInt8 = 0, payload: ByteBuffer) {
        var payload = payload
        var key: MaskingKey?
        if role == .client {
            let maskingKey = maskingKeys.next()
            payload.applyMask(maskingKey, headroom: FrameHeader.maxEncodedSize)
            key = maskingKey
        }
        let header = FrameHeader(fin: fin, rsv: rsv, opcode: opcode, maskingKey: key, payloadLength: payload.readableBytes)
        outbound.append(OutboundFrame(header: header, payload: payload))
        queuedOutboundBytes += header.encodedSize + payload.readableBytes
    }
}

/// What a ``Connection`` reports to the application.
public enum ConnectionEvent: Sendable, Hashable {
    /// A whole message arrived (reassembled, and validated if text).
    case message(WebSocketMessage)
    /// A ping arrived; the pong is already queued.
    case ping(ByteBuffer)
    /// A pong arrived.
    case pong(ByteBuffer)
    /// The connection is closed; no event follows. Write the queued frames, then close TCP.
    case closed(CloseInfo)
}

/// A frame ready for the wire: its header and its payload (already masked on a client).
public struct OutboundFrame: Sendable, Hashable {
    /// The header; write it with ``FrameHeader/write(into:)`` before the payload, or both with
    /// ``FrameHeader/write(into:payload:)``.
    public var header: FrameHeader
    /// The payload as it goes on the wire.
    public var payload: ByteBuffer
}
