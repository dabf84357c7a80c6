import DuplexCompression
import DuplexCore
import FuzzSupport
import NIOCore

// Input: [deflate parameters] [deflate parameters] [limit] [split seed], then messages, each
// [length: 2 bytes, big-endian] [kind] [payload]. kind bit 0: the payload is plain text that the
// client's codec compresses first; otherwise it is raw deflate data as a peer might send it.

/// The message size limits a run can choose.
let limits = [0, 1, 100, 1_000, 4_096, 16_385, 65_536, 1 << 20]
/// The limit of the reference inflater, past anything 4 KiB of input can inflate to (1032:1).
let referenceLimit = 8 << 20

/// What the fuzzer checks, message by message, on a server's inflater with a size limit, fed each
/// message in pieces, against a reference inflater with no practical limit fed a byte at a time:
/// - a message that inflates within the limit comes out whole and equal to the reference's;
/// - one the reference inflates past the limit is refused as too large (1009), never as corrupt (1002);
/// - one refused as corrupt is corrupt for the reference too, within the limit;
/// - the limited output never holds more than the limit plus one byte;
/// - a message compressed by the client's codec inflates to what was compressed, while both
///   windows hold the same history.
///
/// The reference is fed a byte at a time because zlib is lenient within one call: a back-reference
/// further than the window is accepted when the bytes it reaches were written by the same call.
/// A message that breaks the negotiated window can so inflate when it arrives in one frame and fail
/// when split (found by this fuzzer with an 8-bit window). A byte at a time, zlib checks every
/// distance against the window, so the reference says what a valid stream is; for a stream it
/// refuses, the limited inflater may be lenient and is only held to its limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInflate(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let parameters = deflateParameters(input.byte(), input.byte())
    let limit = limits[Int(input.byte() & 7)]
    var splitter = Splitter(seed: UInt64(input.byte()) &+ 1)
    let limited = makeCodec(parameters, isServer: true)
    let reference = makeCodec(parameters, isServer: true)
    let client = makeCodec(parameters, isServer: false)
    // Whether the client's compressor and the server's inflater have seen the same messages.
    var inSync = true

    while !input.rest.isEmpty {
        let length = input.uint16(), kind = input.byte()
        var payload = Array(input.bytes(length))
        var expected: [UInt8]?
        if kind & 1 != 0 {
            guard let compressed = compress(payload, with: client) else { continue }
            expected = inSync ? payload : nil
            payload = compressed
        } else if !parameters.clientNoContextTakeover {
            inSync = false
        }
        let pieces = payload.isEmpty ? [[]] : splitter.pieces(of: payload[...], max: 1 + Int(kind >> 1)).map(Array.init)
        let outcome = inflate(pieces, with: limited, limit: limit)
        let truth = inflate(payload.isEmpty ? [[]] : payload.map { [$0] }, with: reference, limit: referenceLimit)
        compare(outcome, truth, limit: limit)
        if let expected {
            if expected.count <= limit {
                require(outcome.error == nil && outcome.output == expected, "compressed message did not inflate back: \(outcome)")
            } else {
                require(outcome.error == .messageTooLarge(limit: limit), "message of \(expected.count) bytes over \(limit) gave \(outcome)")
            }
        }
        // The connection is failed; or the reference refused what the limited inflater took, and
        // the two windows no longer hold the same history.
        if outcome.error != nil || truth.error != nil { break }
    }
    return 0
}

struct Inflated: CustomStringConvertible {
    var output: [UInt8]
    var error: ProtocolError?

    var description: String { "\(output.count) bytes, \(error.map(String.init(describing:)) ?? "no error")" }
}

func inflate(_ pieces: [[UInt8]], with codec: any MessageCompression, limit: Int) -> Inflated {
    var output = ByteBuffer()
    var error: ProtocolError?
    for (index, piece) in pieces.enumerated() {
        do {
            try codec.decompress(ByteBuffer(bytes: piece), isFinal: index == pieces.count - 1, into: &output, limit: limit)
            require(output.readableBytes <= limit, "inflated \(output.readableBytes) bytes past the limit \(limit) without an error")
        } catch let thrown {
            error = thrown
            break
        }
    }
    require(output.readableBytes <= limit + 1 || limit == referenceLimit, "inflater wrote \(output.readableBytes) bytes, limit \(limit)")
    if let error {
        switch error {
        case .messageTooLarge(limit: limit), .extensionFailure: break
        default: fatalError("invariant broken: inflating threw \(error)")
        }
    }
    return Inflated(output: Array(output.readableBytesView), error: error)
}

func compare(_ outcome: Inflated, _ truth: Inflated, limit: Int) {
    switch outcome.error {
    case nil:
        // A stream the reference refuses may still inflate in bigger pieces (see above).
        require(truth.error != nil || truth.output == outcome.output, "inflated \(outcome), the reference \(truth)")
    case .messageTooLarge:
        require(truth.output.count > limit || truth.error != nil, "refused as over \(limit) bytes, the reference gives \(truth)")
    default:
        require(truth.error != nil && truth.output.count <= limit, "refused as corrupt (\(outcome)), the reference gives \(truth)")
    }
}

func compress(_ bytes: [UInt8], with codec: any MessageCompression) -> [UInt8]? {
    do {
        return try codec.compress(ByteBuffer(bytes: bytes)).map { Array($0.readableBytesView) }
    } catch {
        fatalError("invariant broken: compressing \(bytes.count) bytes failed: \(error)")
    }
}
