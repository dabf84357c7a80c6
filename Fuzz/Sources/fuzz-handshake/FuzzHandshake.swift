import DuplexCompression
import DuplexCore
import FuzzSupport
import NIOCore

// Input: [mode] [deflate configuration] [split seed] then an HTTP head (and perhaps more bytes).
// mode: bit 0 request (0) or response (1); bits 1-2 the head size limit.

/// What the fuzzer checks for one input:
/// - `HTTPHeadParser` gives the same head or the same error, and leaves the same bytes, whether the
///   bytes arrive at once or in pieces; a parsed head written out again parses to the same head.
/// - Every `Sec-WebSocket-Extensions` value that parses formats to a value that parses the same.
/// - A request: a refusal by `ServerHandshake.validate` gives a response that parses with its status;
///   an accepted request gets a 101 (with the permessage-deflate answer of `negotiate`) that a
///   `ClientHandshake` making the same offer accepts, and the agreed parameters build codecs.
/// - A response: what `ClientHandshake.validate` and `PerMessageDeflate.accept` agree to stays within
///   what the client offered, and builds codecs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte(), deflate = input.byte(), seed = input.byte()
    let isRequest = mode & 1 == 0
    let maxHeadSize = [64, 512, 4_096, 16_384][Int(mode >> 1 & 3)]
    let configuration = PerMessageDeflate.Configuration(
        serverMaxWindowBits: 8 + Int(deflate & 7), clientMaxWindowBits: 8 + Int(deflate >> 3 & 7),
        serverNoContextTakeover: deflate & 0x40 != 0, clientNoContextTakeover: deflate & 0x80 != 0)
    let bytes = input.remaining()

    var splitter = Splitter(seed: UInt64(seed) &+ 1)
    let whole = Parse(isRequest: isRequest, maxHeadSize: maxHeadSize, pieces: [bytes])
    let pieces = Parse(isRequest: isRequest, maxHeadSize: maxHeadSize, pieces: splitter.pieces(of: bytes, max: 32))
    require(whole == pieces, "parse differs when fed in pieces: \(whole) vs \(pieces)")

    switch whole.outcome {
    case .request(let head):
        require(Parse.roundTrip(request: head) == .request(head), "request head does not survive being written out")
        checkExtensionHeaders(head.headers)
        checkServer(head, configuration: configuration)
    case .response(let head):
        require(Parse.roundTrip(response: head) == .response(head), "response head does not survive being written out")
        checkExtensionHeaders(head.headers)
        checkClient(head, configuration: configuration)
    case .failed(let error):
        require(error != .headTooLarge || bytes.count > maxHeadSize, "head too large at \(bytes.count) bytes")
    case .incomplete:
        require(bytes.count <= maxHeadSize, "more than \(maxHeadSize) bytes without the end of the head and no error")
    }
    return 0
}

/// The outcome of feeding bytes to a parser, and the bytes it left.
struct Parse: Equatable, CustomStringConvertible {
    enum Outcome: Equatable {
        case request(HTTPRequestHead)
        case response(HTTPResponseHead)
        case failed(HTTPParseError)
        case incomplete
    }

    var outcome = Outcome.incomplete
    var left: [UInt8] = []

    init(isRequest: Bool, maxHeadSize: Int, pieces: [ArraySlice<UInt8>]) {
        var parser = HTTPHeadParser(maxHeadSize: maxHeadSize)
        var buffer = ByteBuffer()
        for piece in pieces {
            buffer.writeBytes(piece)
            guard outcome == .incomplete else { continue }
            do {
                if isRequest {
                    if let head = try parser.parseRequest(&buffer) { outcome = .request(head) }
                } else {
                    if let head = try parser.parseResponse(&buffer) { outcome = .response(head) }
                }
            } catch {
                outcome = .failed(error)
            }
        }
        left = Array(buffer.readableBytesView)
    }

    var description: String { "\(outcome), \(left.count) bytes left" }

    static func roundTrip(request head: HTTPRequestHead) -> Outcome {
        reparse(isRequest: true) { head.write(into: &$0) }
    }

    static func roundTrip(response head: HTTPResponseHead) -> Outcome {
        reparse(isRequest: false) { head.write(into: &$0) }
    }

    /// Parses what `write` writes, which must be exactly one head.
    private static func reparse(isRequest: Bool, _ write: (inout ByteBuffer) -> Void) -> Outcome {
        var buffer = ByteBuffer()
        write(&buffer)
        let parsed = Parse(isRequest: isRequest, maxHeadSize: 1 << 20, pieces: [ArraySlice(buffer.readableBytesView)])
        require(parsed.left.isEmpty, "a written head leaves \(parsed.left.count) bytes")
        return parsed.outcome
    }
}

/// Each extension header value that parses formats to one that parses to the same extensions.
func checkExtensionHeaders(_ headers: HTTPFields) {
    for value in headers.values("Sec-WebSocket-Extensions") {
        guard let extensions = try? WebSocketExtension.parse([value]) else { continue }
        let formatted = WebSocketExtension.format(extensions)
        do {
            let again = try WebSocketExtension.parse([formatted])
            require(again == extensions, "\(value) formats as \(formatted), which parses differently")
        } catch {
            fatalError("invariant broken: \(value) formats as \(formatted), which does not parse: \(error)")
        }
    }
}
