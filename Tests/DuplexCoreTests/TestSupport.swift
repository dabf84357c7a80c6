import DuplexCore
import NIOCore

extension ByteBuffer {
    init(hex bytes: [UInt8]) { self.init(bytes: bytes) }
    var bytes: [UInt8] { Array(readableBytesView) }
}

/// Builds a frame in wire form, masked with `key` when given (as a client sends it).
func wireFrame(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, key: MaskingKey? = MaskingKey(1, 2, 3, 4),
               payload: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger((fin ? 0x80 : 0) | (rsv << 4) | opcode)
    let maskBit: UInt8 = key == nil ? 0 : 0x80
    if payload.count < 126 {
        buffer.writeInteger(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        buffer.writeInteger(maskBit | 126)
        buffer.writeInteger(UInt16(payload.count))
    } else {
        buffer.writeInteger(maskBit | 127)
        buffer.writeInteger(UInt64(payload.count))
    }
    var body = ByteBuffer(bytes: payload)
    if let key {
        buffer.writeMultipleIntegers(key.bytes.0, key.bytes.1, key.bytes.2, key.bytes.3)
        body.applyMask(key)
    }
    buffer.writeBuffer(&body)
    return buffer
}

extension Connection {
    /// All events available now.
    mutating func drainEvents() -> [ConnectionEvent] {
        var events: [ConnectionEvent] = []
        while let event = nextEvent() { events.append(event) }
        return events
    }

    /// All outbound frames available now, decoded back (unmasked) by a peer-side decoder.
    mutating func drainOutbound() -> [Frame] {
        var wire = ByteBuffer()
        while let frame = nextOutboundFrame() {
            frame.header.write(into: &wire)
            var payload = frame.payload
            wire.writeBuffer(&payload)
        }
        var decoder = FrameDecoder(expectsMaskedFrames: role == .client, allowedReservedBits: 0b111)
        var frames: [Frame] = []
        while case .frame(let frame)? = try! decoder.next(from: &wire) { frames.append(frame) }
        return frames
    }

    /// The close event, if the connection closed.
    mutating func closeInfo(in events: [ConnectionEvent]) -> CloseInfo? {
        for case .closed(let info) in events { return info }
        return nil
    }
}

extension Array where Element == ConnectionEvent {
    var closeInfo: CloseInfo? {
        for case .closed(let info) in self { return info }
        return nil
    }
    var messages: [WebSocketMessage] {
        compactMap { if case .message(let message) = $0 { message } else { nil } }
    }
}
