import DuplexCompression
import DuplexCore
import FuzzSupport
import NIOCore

// Input: [flags] [limits] [deflate parameters] [split seed] then bytes from the peer.
// flags: bit 0 role (0 server, 1 client), bit 1 permessage-deflate, bit 2 outbound fragments of 7 bytes.
// limits: bits 0-1 the frame limit, bits 2-3 the message limit, bits 4-7 the client's deflate window.

/// What the fuzzer checks for one input:
/// 1. `FrameDecoder`: every frame decoded re-encodes to exactly the bytes it was decoded from (the
///    decoder accepts only the minimal length form), partial reports add up to the payload, and
///    feeding the bytes in pieces gives the same frames and the same error as feeding them at once.
/// 2. `Connection`: fed in pieces, with events taken at random moments, it reports exactly the events
///    it reports when fed at once; events are well formed (text is UTF-8, sizes within the limits,
///    at most one `closed` and nothing after it).
/// 3. `Connection` with an application that sends, pings and closes while the peer's bytes arrive:
///    everything it writes is valid for a peer `Connection` of the other role (no protocol error),
///    and the peer receives exactly the messages that were sent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte(), limits = input.byte(), deflate = input.byte(), seed = input.byte()
    let setup = Setup(flags: flags, limits: limits, deflate: deflate)
    let wire = input.remaining()

    checkDecoder(wire, setup, splitter: Splitter(seed: UInt64(seed) &+ 1))
    var atOnce = ConnectionRun(setup), inPieces = ConnectionRun(setup)
    let whole = atOnce.feedAtOnce(wire)
    let pieces = inPieces.feedInPieces(wire, splitter: Splitter(seed: UInt64(seed) &+ 2))
    require(whole == pieces, "events differ when fed in pieces:\n\(whole)\nvs\n\(pieces)")
    checkEvents(whole, setup)
    checkWithApplication(wire, setup, splitter: Splitter(seed: UInt64(seed) &+ 3))
    return 0
}

/// The configuration one input chose.
struct Setup {
    let role: Connection.Role
    let parameters: PerMessageDeflate.Parameters?
    let configuration: Connection.Configuration

    init(flags: UInt8, limits: UInt8, deflate: UInt8) {
        role = flags & 1 == 0 ? .server : .client
        parameters = flags & 2 == 0 ? nil : deflateParameters(deflate, limits >> 4)
        let frameLimits = [125, 1_000, 70_000, 16 << 20], messageLimits = [64, 1_000, 100_000, 16 << 20]
        configuration = Connection.Configuration(
            maxFrameSize: frameLimits[Int(limits & 3)], maxMessageSize: messageLimits[Int(limits >> 2 & 3)],
            outboundFragmentSize: flags & 4 == 0 ? nil : 7)
    }

    var peerRole: Connection.Role { role == .server ? .client : .server }

    func connection() -> Connection {
        Connection(role: role, configuration: configuration,
                   compression: parameters.map { makeCodec($0, isServer: role == .server) })
    }

    func peer() -> Connection {
        Connection(role: peerRole, compression: parameters.map { makeCodec($0, isServer: role != .server) })
    }
}

// MARK: 1. The frame decoder

struct DecodedFrames: Equatable {
    var frames: [Frame] = []
    var error: ProtocolError?
}

func checkDecoder(_ wire: ArraySlice<UInt8>, _ setup: Setup, splitter: Splitter) {
    var splitter = splitter
    let whole = decode([wire], wire: wire, setup)
    let pieces = decode(splitter.pieces(of: wire, max: 40), wire: wire, setup)
    require(whole == pieces, "decoder gives other frames when fed in pieces: \(whole) vs \(pieces)")
}

func decode(_ pieces: [ArraySlice<UInt8>], wire: ArraySlice<UInt8>, _ setup: Setup) -> DecodedFrames {
    var decoder = FrameDecoder(expectsMaskedFrames: setup.role == .server, maxFrameSize: setup.configuration.maxFrameSize,
                               allowedReservedBits: setup.parameters == nil ? 0 : 0b100)
    var result = DecodedFrames()
    var buffer = ByteBuffer()
    var consumed = wire.startIndex
    var reported: [UInt8] = []
    for piece in pieces {
        buffer.writeBytes(piece)
        do {
            while let output = try decoder.next(from: &buffer) {
                switch output {
                case .frame(let frame):
                    let encoded = encode(frame.header, frame.payload)
                    require(wire[consumed...].starts(with: encoded), "frame \(frame.header) does not re-encode to its bytes")
                    consumed += encoded.count
                    require(Array(frame.payload.readableBytesView).starts(with: reported),
                            "partial reports are not the start of the payload")
                    reported = []
                    result.frames.append(frame)
                case .partial(let header, let bytes, let offset):
                    require(offset == reported.count, "partial report at \(offset) after \(reported.count) bytes")
                    require(offset + bytes.readableBytes < header.payloadLength, "a partial report completes the frame")
                    require(header.payloadLength <= setup.configuration.maxFrameSize, "frame over the limit reported")
                    reported += bytes.readableBytesView
                }
            }
        } catch {
            result.error = error
            return result
        }
    }
    return result
}

/// A frame in wire form, its payload masked with the header's key.
func encode(_ header: FrameHeader, _ payload: ByteBuffer) -> [UInt8] {
    var buffer = ByteBuffer()
    header.write(into: &buffer)
    var payload = payload
    if let key = header.maskingKey { payload.applyMask(key) }
    buffer.writeBuffer(&payload)
    return Array(buffer.readableBytesView)
}
