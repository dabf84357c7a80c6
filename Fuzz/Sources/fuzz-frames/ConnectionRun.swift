import DuplexCore
import FuzzSupport
import NIOCore

// MARK: 2. The connection, fed at once or in pieces

/// One connection fed the peer's bytes, with its events and written frames collected.
struct ConnectionRun {
    var connection: Connection
    var events: [ConnectionEvent] = []
    var written: [OutboundFrame] = []

    init(_ setup: Setup) {
        connection = setup.connection()
    }

    mutating func takeEvents() {
        while let event = connection.nextEvent() {
            require(events.last.map { if case .closed = $0 { false } else { true } } ?? true, "event \(event) after closed")
            events.append(event)
        }
        while let frame = connection.nextOutboundFrame() { written.append(frame) }
    }

    mutating func feedAtOnce(_ wire: ArraySlice<UInt8>) -> [ConnectionEvent] {
        connection.receive(ByteBuffer(bytes: wire))
        takeEvents()
        return events
    }

    mutating func feedInPieces(_ wire: ArraySlice<UInt8>, splitter: Splitter) -> [ConnectionEvent] {
        var splitter = splitter
        for piece in splitter.pieces(of: wire, max: 64) {
            connection.receive(ByteBuffer(bytes: piece))
            if splitter.next() % 3 != 0 { takeEvents() }
        }
        takeEvents()
        return events
    }
}

/// Events are well formed: text is UTF-8, sizes are within the limits, a `closed` comes last and
/// carries the code of the error that caused it.
func checkEvents(_ events: [ConnectionEvent], _ setup: Setup) {
    for (index, event) in events.enumerated() {
        switch event {
        case .message(let message):
            require(message.data.readableBytes <= setup.configuration.maxMessageSize,
                    "message of \(message.data.readableBytes) bytes over the limit")
            if message.kind == .text {
                require(isValidUTF8(message.data.readableBytesView), "text message is not UTF-8")
            }
        case .ping(let payload), .pong(let payload):
            require(payload.readableBytes <= 125, "control payload over 125 bytes")
        case .closed(let info):
            require(index == events.count - 1, "closed is not the last event")
            if let error = info.error {
                require(info.code == error.closeCode && !info.wasClean, "failure closed as \(info)")
            }
        }
    }
}
