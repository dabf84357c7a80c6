import DuplexCompression
import DuplexCore
import Foundation
import NIOCore
import Testing

/// Python `websockets` (an implementation nobody here wrote) as the peer of our codec: it inflates
/// what our server compressed, and compresses messages for our server to inflate.
@Suite
struct PythonInteropTests {
    typealias Parameters = PerMessageDeflate.Parameters

    @Test(arguments: [
        Parameters(),
        Parameters(serverMaxWindowBits: 9, clientMaxWindowBits: 10),
        Parameters(serverMaxWindowBits: 12, clientMaxWindowBits: 9, serverNoContextTakeover: true, clientNoContextTakeover: true),
        Parameters(serverMaxWindowBits: 15, clientMaxWindowBits: 8),  // Python cannot compress with 8 bits: it uses none
    ])
    func messagesBothWays(parameters: Parameters) throws {
        let server = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true, configuration: .init(minimumSize: 0))
        let plaintexts: [[UInt8]] = [[], [0x41], randomBytes(100_000), repetitiveBytes(1_000_000), repetitiveBytes(3_000), [], repetitiveBytes(3_000)]
        // nil: sent as it is (incompressible without context takeover), without RSV1.
        let sent = try plaintexts.map { try server.compress(ByteBuffer(bytes: $0)).map { Array($0.readableBytesView) } }
        #expect(sent.contains { $0 == nil } == parameters.serverNoContextTakeover)
        let canCompress = parameters.clientMaxWindowBits >= 9
        let reply = try PythonPeer.run(parameters: parameters, plaintexts: plaintexts, compressed: sent, compressBack: canCompress)
        #expect(reply.decodedMatches == Array(repeating: true, count: plaintexts.count))
        guard canCompress else { return }
        #expect(reply.encoded.count == plaintexts.count)
        for (encoded, plaintext) in zip(reply.encoded, plaintexts) {
            #expect(Array(try server.inflate(ByteBuffer(bytes: encoded), pieceSize: 997).readableBytesView) == plaintext)
        }
    }
}

/// Runs a small Python script around `websockets.extensions.permessage_deflate.PerMessageDeflate`
/// playing the client.
enum PythonPeer {
    struct Reply { var decodedMatches: [Bool]; var encoded: [[UInt8]] }

    static let isAvailable: Bool = (try? python(script: "import websockets.extensions.permessage_deflate", input: Data())) != nil

    static let script = """
        import json, sys
        from websockets.extensions.permessage_deflate import PerMessageDeflate
        from websockets.frames import Frame, Opcode
        job = json.load(sys.stdin)
        p = job["parameters"]
        peer = PerMessageDeflate(p["snct"], p["cnct"], p["sbits"], max(p["cbits"], 9))
        matches = []
        for plain, sent in zip(job["plaintexts"], job["compressed"]):
            rsv1 = sent is not None
            frame = peer.decode(Frame(Opcode.BINARY, bytes.fromhex(sent if rsv1 else plain), True, rsv1))
            matches.append(frame.data == bytes.fromhex(plain))
        encoded = []
        if job["compressBack"]:
            for plain in job["plaintexts"]:
                encoded.append(bytes(peer.encode(Frame(Opcode.BINARY, bytes.fromhex(plain))).data).hex())
        json.dump({"matches": matches, "encoded": encoded}, sys.stdout)
        """

    static func run(parameters: PerMessageDeflate.Parameters, plaintexts: [[UInt8]], compressed: [[UInt8]?], compressBack: Bool) throws -> Reply {
        let job: [String: Any] = [
            "parameters": [
                "snct": parameters.serverNoContextTakeover, "cnct": parameters.clientNoContextTakeover,
                "sbits": parameters.serverMaxWindowBits, "cbits": parameters.clientMaxWindowBits,
            ],
            "plaintexts": plaintexts.map(hex), "compressed": compressed.map { $0.map(hex) ?? NSNull() as Any }, "compressBack": compressBack,
        ]
        let output = try python(script: script, input: try JSONSerialization.data(withJSONObject: job))
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let matches = object?["matches"] as? [Bool] ?? []
        let encoded = (object?["encoded"] as? [String] ?? []).map(bytes(hex:))
        return Reply(decodedMatches: matches, encoded: encoded)
    }

    struct Failed: Error { var status: Int32 }

    static func python(script: String, input: Data) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failed(status: process.terminationStatus) }
        return output
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes { out += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(hex: String) -> [UInt8] {
        let utf8 = Array(hex.utf8)
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x57 }
        return stride(from: 0, to: utf8.count - 1, by: 2).map { nibble(utf8[$0]) << 4 | nibble(utf8[$0 + 1]) }
    }
}
