import DuplexCore
import FuzzSupport
import NIOCore

// MARK: 3. The connection with an application sending at the same time, checked by a peer

/// Feeds the peer's bytes in pieces while the application sends messages, pings and closes, then
/// hands everything written to a peer connection: it must see no protocol error, and the messages
/// the application sent, in order.
func checkWithApplication(_ wire: ArraySlice<UInt8>, _ setup: Setup, splitter: Splitter) {
    var splitter = splitter
    var run = ConnectionRun(setup)
    var sent: [WebSocketMessage] = []
    let now = NIODeadline.uptimeNanoseconds(0)
    for piece in splitter.pieces(of: wire, max: 64) {
        run.connection.receive(ByteBuffer(bytes: piece))
        run.takeEvents()
        let message: WebSocketMessage
        switch splitter.next() % 12 {
        case 0, 1:
            message = .text(String(repeating: "héllo wörld ✓ ", count: splitter.size(max: 20)))
        case 2, 3:
            message = .binary(piece)
        case 4:
            _ = try? run.connection.sendPing(ByteBuffer(bytes: piece.prefix(125)))
            continue
        case 5:
            _ = try? run.connection.close(code: .normalClosure, reason: "fuzz", now: now)
            continue
        default:
            continue
        }
        do {
            try run.connection.send(message, compress: splitter.next() % 4 != 0)
            sent.append(message)
        } catch {
            require(run.connection.readyState != .open, "send failed on an open connection: \(error)")
        }
    }
    if let deadline = run.connection.closeDeadline {
        require(run.connection.closeTimeoutExpired(now: deadline), "the close timeout did not expire at its deadline")
    }
    run.connection.receiveEOF()
    run.takeEvents()
    checkEvents(run.events, setup)
    require(run.connection.readyState == .closed, "not closed after EOF")
    guard case .closed = run.events.last else { fatalError("invariant broken: no closed event after EOF") }

    var peer = setup.peer()
    var bytes = ByteBuffer()
    for frame in run.written {
        require((frame.header.maskingKey != nil) == (setup.role == .client), "frame masked wrongly for \(setup.role)")
        require(!frame.header.opcode.isControl || frame.payload.readableBytes <= 125, "control frame over 125 bytes")
        bytes.writeBytes(encode(frame.header, unmasked(frame)))
    }
    peer.receive(bytes)
    var received: [WebSocketMessage] = []
    while let event = peer.nextEvent() {
        switch event {
        case .message(let message):
            received.append(message)
        case .closed(let info):
            require(info.error == nil, "the peer found a protocol error in what was written: \(info)")
        case .ping, .pong:
            break
        }
    }
    require(received == sent, "the peer received \(received.count) messages, \(sent.count) were sent")
}

/// An outbound frame's payload as the application gave it (outbound payloads are masked already).
func unmasked(_ frame: OutboundFrame) -> ByteBuffer {
    var payload = frame.payload
    if let key = frame.header.maskingKey { payload.applyMask(key) }
    return payload
}
