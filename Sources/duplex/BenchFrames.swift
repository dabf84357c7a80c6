import ArgumentParser
import Duplex
import Foundation
import NIOCore
import NIOPosix

/// `duplex bench --driver frames`: the echo and connect workloads from a driver that speaks just
/// enough WebSocket to load a server, so that on a small machine the load generator is not what
/// limits it. It writes frames prepared before the run (masked with 16 random keys, taken in turn;
/// the server still unmasks every byte) and counts echoed messages from their frame headers
/// without assembling their payloads; it answers pings and closes. The opening handshake is the
/// real one: a random key per connection, and the response checked by `ClientHandshake`. ws://
/// only, without compression: the deflate rows need the client driver.
extension LoadBench {
    func runFrameEcho() async throws -> [(String, String)] {
        let url = try frameDriverURL()
        let frames = Self.preparedFrames(size: size, opcode: binary ? .binary : .text)
        let (size, inFlight) = (self.size, self.inFlight)
        var handles: [ChannelEchoHandle<FrameEchoDriver>] = []
        for _ in 0..<connections {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: url.host, port: url.port).get()
            let (handle, opened) = try await channel.eventLoop.submit {
                let driver = FrameEchoDriver(url: url, frames: frames, size: size, inFlight: inFlight,
                                             opened: channel.eventLoop.makePromise())
                try channel.pipeline.syncOperations.addHandler(driver)
                return (ChannelEchoHandle(channel: channel, driver: driver), driver.opened.futureResult)
            }.get()
            try await opened.get()
            handles.append(handle)
        }
        return try await measureRoundTrips(handles, mode: "echo", size: size)
    }

    /// C handshakes at a time until the deadline, each followed by a close handshake.
    func runFrameConnect() async throws -> [(String, String)] {
        let url = try frameDriverURL()
        // Resolved once: a name lookup per connection would cost more than the handshake.
        let address = try SocketAddress.makeAddressResolvingHost(url.host, port: url.port)
        return try await measureHandshakes { eventLoop, done in
            ClientBootstrap(group: eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(to: address)
                .flatMapThrowing { channel in
                    let driver = FrameEchoDriver(url: url, frames: [], size: 0, inFlight: 0, opened: eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(driver)
                    let bound = NIOLoopBound(driver, eventLoop: eventLoop)
                    let opened = driver.opened.futureResult
                    opened.whenSuccess { bound.value.closeNormally() }
                    return channel.closeFuture.flatMap { opened.map { bound.value.closedCleanly } }
                }
                .flatMap { $0 }
                .whenComplete { result in
                    let succeeded = if case .success(true) = result { true } else { false }
                    eventLoop.execute { done(succeeded) }
                }
        }
    }

    private func frameDriverURL() throws -> WebSocketURL {
        let url = try WebSocketURL(self.url)
        guard !url.isSecure else { throw ValidationError("--driver frames speaks ws:// only; use --driver client for wss://") }
        guard !compression else { throw ValidationError("--driver frames does not compress; use --driver client with --compression") }
        return url
    }

    /// Frames of `size` bytes of "x", each masked with a key of its own.
    static func preparedFrames(size: Int, opcode: Opcode) -> [ByteBuffer] {
        (0..<16).map { _ in FrameEchoDriver.maskedFrame(opcode, payload: ByteBuffer(repeating: UInt8(ascii: "x"), count: size)) }
    }
}

/// One connection of `--driver frames`, on its event loop: the opening handshake, then `inFlight`
/// messages kept out, each echo recognised by its frame headers.
final class FrameEchoDriver: ChannelInboundHandler, ChannelEchoDriver {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Failure: Error, CustomStringConvertible {
        case maskedFrame, controlFrameTooLong(Int), echoSize(Int, expected: Int), closedBeforeOpening, closedByServer, timedOut(String)

        var description: String {
            switch self {
            case .maskedFrame: "the server sent a masked frame"
            case .controlFrameTooLong(let length): "the server sent a control frame of \(length) bytes (at most 125)"
            case .echoSize(let size, let expected): "an echo of \(size) bytes for a message of \(expected)"
            case .closedBeforeOpening: "the connection closed before the handshake completed"
            case .closedByServer: "the server closed the connection during the run"
            case .timedOut(let what): "no \(what) within \(FrameEchoDriver.timeout.nanoseconds / 1_000_000_000) s"
            }
        }
    }

    /// How long the server has to answer the opening handshake, and then the closing one.
    static let timeout = TimeAmount.seconds(5)

    /// Succeeds when the handshake has, fails when it cannot.
    let opened: EventLoopPromise<Void>
    private var settled = false
    /// Whether the server answered the close frame this driver sent with one of its own.
    private(set) var closedCleanly = false
    private(set) var failure: (any Error)?
    var clock = RoundTripClock()
    var running = false

    private var handshake: ClientHandshake?
    private var parser = HTTPHeadParser()
    private let frames: [ByteBuffer]
    private var nextFrame = 0
    private let size: Int
    private let inFlight: Int
    private var context: ChannelHandlerContext?
    /// Bytes not yet parsed: the response head while it arrives, or a frame header cut short.
    private var unparsed = ByteBuffer()
    /// The frame whose payload is arriving: its opcode, whether it ends its message, and the payload
    /// bytes still to come.
    private var opcode: UInt8 = 0
    private var fin = false
    private var remaining = 0
    /// The payload of a control frame, which is answered (ping) or ends the connection (close).
    private var controlPayload = ByteBuffer()
    private var messageBytes = 0
    private var sentClose = false
    private var timer: Scheduled<Void>?

    init(url: WebSocketURL, frames: [ByteBuffer], size: Int, inFlight: Int, opened: EventLoopPromise<Void>) {
        self.handshake = ClientHandshake(host: url.hostHeader, target: url.target)
        self.frames = frames
        self.size = size
        self.inFlight = inFlight
        self.opened = opened
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        var request = ByteBuffer()
        handshake?.request.write(into: &request)
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        startTimer("handshake response")
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// Fails the connection unless the handshake completes (or the connection closes) in time.
    private func startTimer(_ what: String) {
        timer?.cancel()
        timer = context?.eventLoop.assumeIsolated().scheduleTask(in: Self.timeout) { [self] in
            guard let context else { return }
            fail(Failure.timedOut(what), context: context)
        }
    }

    func start() {
        running = true
        for _ in 0..<inFlight { sendOne() }
        context?.flush()
    }

    /// Sends a close frame (1000) and waits for the server's.
    func closeNormally() {
        guard let context, !sentClose else { return }
        sentClose = true
        startTimer("close from the server")
        context.writeAndFlush(wrapOutboundOut(Self.maskedFrame(.close, payload: ByteBuffer(integer: UInt16(1000)))), promise: nil)
    }

    /// A client's frame: `payload` masked with a random key of its own, after its header.
    static func maskedFrame(_ opcode: Opcode, payload: ByteBuffer) -> ByteBuffer {
        let key = MaskingKey.random()
        var payload = payload
        payload.applyMask(key)
        return FrameHeader(opcode: opcode, maskingKey: key, payloadLength: payload.readableBytes).encoded(payload: payload)
    }

    private func sendOne() {
        guard let context else { return }
        clock.sent()
        context.write(wrapOutboundOut(frames[nextFrame]), promise: nil)
        nextFrame = (nextFrame + 1) % frames.count
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        do {
            if unparsed.readableBytes > 0 || handshake != nil {
                unparsed.writeBuffer(&bytes)
                try parse(&unparsed)
                if unparsed.readableBytes == 0 { unparsed = ByteBuffer() }
            } else {
                try parse(&bytes)
                if bytes.readableBytes > 0 { unparsed = bytes }
            }
        } catch {
            fail(error, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !settled { opened.fail(Failure.closedBeforeOpening) }
        settled = true
        if !sentClose, failure == nil { failure = Failure.closedByServer }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        if !settled { opened.fail(error) }
        settled = true
        if failure == nil { failure = error }
        context.close(promise: nil)
    }

    /// Parses what it can of `buffer`, leaving only a head or a frame header cut short.
    private func parse(_ buffer: inout ByteBuffer) throws {
        if let handshake {
            guard let head = try parser.parseResponse(&buffer) else { return }
            _ = try handshake.validate(head)
            timer?.cancel()
            self.handshake = nil
            settled = true
            opened.succeed()
        }
        while buffer.readableBytes > 0 {
            if remaining > 0 {
                let count = min(remaining, buffer.readableBytes)
                if opcode >= 8 {
                    controlPayload.writeImmutableBuffer(buffer.readSlice(length: count)!)
                } else {
                    buffer.moveReaderIndex(forwardBy: count)
                }
                remaining -= count
                if remaining == 0 { try frameEnded() }
                continue
            }
            guard try parseHeader(&buffer) else { return }
            if remaining == 0 { try frameEnded() }
        }
    }

    /// The header at the front of `buffer`, consumed; false when it has not all arrived.
    private func parseHeader(_ buffer: inout ByteBuffer) throws -> Bool {
        guard let (first, second) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8).self) else { return false }
        if second & 0x80 != 0 { throw Failure.maskedFrame }
        let length7 = Int(second & 0x7F)
        let lengthSize = length7 == 126 ? 2 : (length7 == 127 ? 8 : 0)
        guard buffer.readableBytes >= 2 + lengthSize else { return false }
        switch length7 {
        case 126: remaining = Int(buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self)!)
        case 127: remaining = Int(truncatingIfNeeded: buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self)!)
        default: remaining = length7
        }
        buffer.moveReaderIndex(forwardBy: 2 + lengthSize)
        opcode = first & 0x0F
        fin = first & 0x80 != 0
        if opcode < 8 { messageBytes += remaining } else if remaining > 125 { throw Failure.controlFrameTooLong(remaining) }
        return true
    }

    private func frameEnded() throws {
        switch opcode {
        case 0x9:  // ping: pong with its payload
            guard let context else { break }
            context.writeAndFlush(wrapOutboundOut(Self.maskedFrame(.pong, payload: controlPayload)), promise: nil)
        case 0x8:  // close: answer it (or it answers ours), then the TCP connection closes
            closedCleanly = sentClose
            if !sentClose, failure == nil { failure = Failure.closedByServer }
            closeNormally()
            context?.close(promise: nil)
        case 0xA:
            break
        default:
            guard fin else { return }
            defer { messageBytes = 0 }
            guard messageBytes == size else { throw Failure.echoSize(messageBytes, expected: size) }
            if clock.echoed(), running { sendOne() }
        }
        controlPayload.clear()
    }
}
