import DuplexCompression
import DuplexCore
import NIOCore
import Testing

@Suite struct CodecTests {
    typealias Parameters = PerMessageDeflate.Parameters
    typealias Configuration = PerMessageDeflate.Configuration

    @Test(arguments: [0, 1, 100_000])
    func randomRoundTrip(size: Int) throws {
        let pair = try CodecPair()
        let bytes = randomBytes(size)
        #expect(Array(try pair.client.inflate(pair.server.deflate(bytes)).readableBytesView) == bytes)
        #expect(Array(try pair.server.inflate(pair.client.deflate(bytes)).readableBytesView) == bytes)
    }

    @Test func emptyMessageIsOneZeroByte() throws {
        let pair = try CodecPair()
        #expect(Array(try pair.server.deflate([]).readableBytesView) == [0x00])
        #expect(try pair.client.inflate(ByteBuffer(bytes: [0x00])).readableBytes == 0)
    }

    @Test func repetitiveMegabyteShrinksAndRoundTrips() throws {
        let pair = try CodecPair()
        let bytes = repetitiveBytes(1_000_000)
        let compressed = try pair.server.deflate(bytes)
        #expect(compressed.readableBytes < 20_000)
        #expect(Array(try pair.client.inflate(compressed).readableBytesView) == bytes)
    }

    @Test(arguments: [1, 7, 1000])
    func messageAcrossManyFragments(pieceSize: Int) throws {
        let pair = try CodecPair()
        let bytes = repetitiveBytes(50_000) + randomBytes(20_000)
        let compressed = try pair.client.deflate(bytes)
        #expect(Array(try pair.server.inflate(compressed, pieceSize: pieceSize).readableBytesView) == bytes)
    }

    @Test func emptyPiecesAreHarmless() throws {
        let pair = try CodecPair()
        let compressed = try pair.server.deflate(Array("hello".utf8))
        var output = ByteBuffer()
        try pair.client.decompress(ByteBuffer(), isFinal: false, into: &output, limit: 100)
        try pair.client.decompress(compressed, isFinal: false, into: &output, limit: 100)
        try pair.client.decompress(ByteBuffer(), isFinal: true, into: &output, limit: 100)
        #expect(String(buffer: output) == "hello")
    }

    @Test func contextTakeoverShrinksARepeatedMessage() throws {
        let message = randomBytes(2_000)
        let pair = try CodecPair()
        let first = try pair.server.deflate(message)
        let second = try pair.server.deflate(message)
        #expect(second.readableBytes < first.readableBytes / 10)
        #expect(Array(try pair.client.inflate(first).readableBytesView) == message)
        #expect(Array(try pair.client.inflate(second).readableBytesView) == message)
    }

    @Test func noContextTakeoverCompressesEachMessageAlone() throws {
        let message = repetitiveBytes(200) + randomBytes(2_000) + repetitiveBytes(200)
        let pair = try CodecPair(Parameters(serverNoContextTakeover: true, clientNoContextTakeover: true))
        for codec in [pair.server, pair.client] {
            let first = try codec.deflate(message)
            let second = try codec.deflate(message)
            #expect(first == second)
        }
        for _ in 0..<3 {
            #expect(Array(try pair.client.inflate(pair.server.deflate(message)).readableBytesView) == message)
            #expect(Array(try pair.server.inflate(pair.client.deflate(message)).readableBytesView) == message)
        }
    }

    @Test func incompressibleMessageIsSentAsItIsWithoutContextTakeover() throws {
        let pair = try CodecPair(Parameters(serverNoContextTakeover: true))
        #expect(try pair.server.compress(ByteBuffer(bytes: randomBytes(1_000))) == nil)
        // With context takeover the peer must see everything, so it is compressed regardless.
        #expect(try pair.client.compress(ByteBuffer(bytes: randomBytes(1_000))) != nil)
    }

    @Test func messagesUnderTheThresholdAreNotCompressed() throws {
        let codec = try PerMessageDeflate.makeCodec(parameters: .init(), isServer: true, configuration: .init())
        #expect(try codec.compress(ByteBuffer(bytes: repetitiveBytes(31))) == nil)
        #expect(try codec.compress(ByteBuffer(bytes: repetitiveBytes(32))) != nil)
    }

    @Test(arguments: [(9, 9), (9, 15), (15, 9), (12, 10)])
    func windowSizes(serverBits: Int, clientBits: Int) throws {
        let pair = try CodecPair(Parameters(serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits))
        let bytes = repetitiveBytes(30_000) + randomBytes(5_000) + repetitiveBytes(30_000)
        for _ in 0..<2 {
            #expect(Array(try pair.client.inflate(pair.server.deflate(bytes)).readableBytesView) == bytes)
            #expect(Array(try pair.server.inflate(pair.client.deflate(bytes)).readableBytesView) == bytes)
        }
    }

    @Test func eightBitWindowsBothWays() throws {
        // zlib compresses "8 bits" with its 9-bit window, whose matches reach at most 250 bytes back;
        // the peer inflates with a real 256-byte window, which fails on anything farther.
        let pair = try CodecPair(Parameters(serverMaxWindowBits: 8, clientMaxWindowBits: 8))
        let bytes = repetitiveBytes(20_000) + randomBytes(3_000) + repetitiveBytes(20_000) + randomBytes(200) + randomBytes(200)
        // zlib checks distances against its window only for history from earlier calls, so
        // inflating one byte at a time puts every back-reference to the test.
        for _ in 0..<3 {
            #expect(Array(try pair.client.inflate(pair.server.deflate(bytes), pieceSize: 1).readableBytesView) == bytes)
            #expect(Array(try pair.server.inflate(pair.client.deflate(bytes), pieceSize: 1).readableBytesView) == bytes)
        }
        // A stream from a 15-bit compressor that refers 1 KiB back is refused by that 256-byte window.
        let block = randomBytes(1_024)
        let wide = try CodecPair(Parameters())
        let farReference = try wide.server.deflate(block + block)
        #expect(throws: ProtocolError.self) { try pair.client.inflate(farReference, pieceSize: 1) }
    }

    @Test func aSmallWindowReallyLimitsBackReferences() throws {
        // 1 KiB of random bytes repeated: a 9-bit (512-byte) window cannot see the repeat, 15 bits can.
        let block = randomBytes(1_024)
        let small = try PerMessageDeflate.makeCodec(parameters: Parameters(serverMaxWindowBits: 9), isServer: true, configuration: .init())
        let large = try PerMessageDeflate.makeCodec(parameters: Parameters(), isServer: true, configuration: .init())
        #expect(try small.deflate(block + block).readableBytes > 2_000)
        #expect(try large.deflate(block + block).readableBytes < 1_200)
    }

    @Test func decompressionBombStopsAtTheLimit() throws {
        let pair = try CodecPair()
        let bomb = try pair.client.deflate([UInt8](repeating: 0, count: 10_000_000))
        #expect(bomb.readableBytes < 20_000)
        let limit = 1_000_000
        var output = ByteBuffer()
        #expect(throws: ProtocolError.messageTooLarge(limit: limit)) {
            try pair.server.decompress(bomb, isFinal: true, into: &output, limit: limit)
        }
        #expect(output.readableBytes <= limit)
        #expect(output.capacity <= 1 << 20)  // the next power of two: ByteBuffer's own rounding
    }

    @Test func bombAcrossFragmentsStopsAtTheLimit() throws {
        let pair = try CodecPair()
        let bomb = try pair.client.deflate([UInt8](repeating: 0x61, count: 5_000_000))
        #expect(throws: ProtocolError.messageTooLarge(limit: 100_000)) { try pair.server.inflate(bomb, pieceSize: 100, limit: 100_000) }
    }

    @Test func messageExactlyAtTheLimitIsAccepted() throws {
        let pair = try CodecPair()
        let bytes = repetitiveBytes(65_536)
        #expect(try pair.server.inflate(pair.client.deflate(bytes), limit: 65_536).readableBytes == 65_536)
        #expect(throws: ProtocolError.messageTooLarge(limit: 65_535)) { try pair.server.inflate(pair.client.deflate(bytes), limit: 65_535) }
    }

    @Test func limitCountsWhatTheMessageAlreadyHolds() throws {
        let pair = try CodecPair()
        let compressed = try pair.client.deflate(repetitiveBytes(1_000))
        var output = ByteBuffer(bytes: repetitiveBytes(500))
        #expect(throws: ProtocolError.messageTooLarge(limit: 1_499)) {
            try pair.server.decompress(compressed, isFinal: true, into: &output, limit: 1_499)
        }
    }

    // Found by FuzzInflate: near the limit zlib was given the whole of a chunk that ByteBuffer had
    // rounded up to a power of two, so it inflated past the limit and reached corrupt data there,
    // failing with 1002 (extension failure) where the message was simply too large (1009). With a
    // limit of 99, the 100th byte fills zlib's output and zlib reads on into the bad block header.
    @Test(arguments: [1, 64, 99])
    func dataPastTheLimitIsTooLargeEvenWhenCorruptFurtherOn(limit: Int) throws {
        let pair = try CodecPair()
        // A stored block of 100 bytes, then a stored block whose NLEN is not the complement of LEN.
        let stored: [UInt8] = [0x00, 100, 0x00, 0x9B, 0xFF] + [UInt8](repeating: 0x61, count: 100) + [0x00, 0x05, 0x00, 0x00, 0x00]
        var output = ByteBuffer()
        #expect(throws: ProtocolError.messageTooLarge(limit: limit)) {
            try pair.server.decompress(ByteBuffer(bytes: stored), isFinal: true, into: &output, limit: limit)
        }
        #expect(output.readableBytes <= limit + 1)  // the byte that shows the message is too large
        // With room for the first block, the second one is what fails.
        let roomy = try CodecPair()
        output.clear()
        do {
            try roomy.server.decompress(ByteBuffer(bytes: stored), isFinal: true, into: &output, limit: 1_000)
            Issue.record("no error")
        } catch {
            guard case .extensionFailure = error else { Issue.record("\(error)"); return }
        }
    }

    @Test func corruptDataIsAnExtensionFailure() throws {
        let pair = try CodecPair()
        var output = ByteBuffer()
        // BTYPE 11 is reserved.
        #expect(throws: ProtocolError.self) { try pair.server.decompress(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF]), isFinal: true, into: &output, limit: 1_000) }
        do {
            try pair.client.decompress(ByteBuffer(bytes: [0x07, 0x00]), isFinal: true, into: &output, limit: 1_000)
            Issue.record("no error")
        } catch {
            guard case .extensionFailure = error else { Issue.record("\(error)"); return }
            #expect(error.closeCode == .protocolError)
        }
    }

    @Test func bfinalBlockFromTheRFCIsAccepted() throws {
        // RFC 7692 §7.2.3.4: "Hello" in a block with BFINAL set, then a 0x00 octet.
        let pair = try CodecPair()
        let payload = ByteBuffer(bytes: [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])
        #expect(String(buffer: try pair.server.inflate(payload)) == "Hello")
        #expect(String(buffer: try pair.server.inflate(payload)) == "Hello")
    }

    @Test func rfcExamplesInflate() throws {
        // RFC 7692 §7.2.3.1 (one frame), §7.2.3.2 (shared window), §7.2.3.3 (stored block).
        let pair = try CodecPair()
        let hello = ByteBuffer(bytes: [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        #expect(String(buffer: try pair.client.inflate(hello)) == "Hello")
        #expect(String(buffer: try pair.client.inflate(ByteBuffer(bytes: [0xF2, 0x00, 0x11, 0x00, 0x00]))) == "Hello")
        #expect(String(buffer: try pair.client.inflate(ByteBuffer(bytes: [0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00]))) == "Hello")
        #expect(String(buffer: try pair.client.inflate(hello, pieceSize: 3)) == "Hello")
    }

    @Test func lowMemoryRoundTrip() throws {
        let offer = PerMessageDeflate.offer(configuration: .lowMemory)
        let (response, parameters) = try #require(PerMessageDeflate.negotiate(offers: [offer], configuration: .lowMemory))
        let clientParameters = try #require(try PerMessageDeflate.accept(response: [response], configuration: .lowMemory))
        let server = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true, configuration: .lowMemory)
        let client = try PerMessageDeflate.makeCodec(parameters: clientParameters, isServer: false, configuration: .lowMemory)
        let bytes = repetitiveBytes(10_000)
        for _ in 0..<3 {
            #expect(Array(try client.inflate(server.deflate(bytes)).readableBytesView) == bytes)
            #expect(Array(try server.inflate(client.deflate(bytes)).readableBytesView) == bytes)
        }
    }

    // Found by fuzz-inflate: once a message held bytes already, its last chunk was inflated with
    // the room left as the limit, so a message that was too large was reported against that room:
    // "message exceeds limit of 0 bytes" for a limit of 100.
    @Test func tooLargeNamesTheMessageLimitWhenTheMessageIsFullAlready() throws {
        let pair = try CodecPair()
        let full: [UInt8] = [0x00, 100, 0x00, 0x9B, 0xFF] + [UInt8](repeating: 0x61, count: 100)  // a stored block of 100 bytes
        let more: [UInt8] = [0x00, 0x01, 0x00, 0xFE, 0xFF, 0x62] + [0x00, 0x05, 0x00, 0x00, 0x00]  // 1 byte, then a bad block
        var output = ByteBuffer()
        try pair.server.decompress(ByteBuffer(bytes: full), isFinal: false, into: &output, limit: 100)
        #expect(output.readableBytes == 100)
        #expect(throws: ProtocolError.messageTooLarge(limit: 100)) {
            try pair.server.decompress(ByteBuffer(bytes: more), isFinal: true, into: &output, limit: 100)
        }
    }

    /// The input fuzz-inflate found it with (10-bit windows, no context takeover, a limit of 100),
    /// whatever the frames it arrives in.
    @Test(arguments: [1, 2, 7, 33, 50, 94, 102])
    func fuzzedMessageOverTheLimitIsTooLargeInAnyPieces(pieceSize: Int) throws {
        let parameters = Parameters(serverMaxWindowBits: 10, clientMaxWindowBits: 10,
                                    serverNoContextTakeover: true, clientNoContextTakeover: true)
        let pair = try CodecPair(parameters)
        let payload = [UInt8](repeating: 0xBA, count: 4) + [UInt8](repeating: 0xFF, count: 12) + [UInt8](repeating: 0xBA, count: 25)
            + [0x9A] + [UInt8](repeating: 0xBA, count: 60)
        #expect(throws: ProtocolError.messageTooLarge(limit: 100)) {
            try pair.server.inflate(ByteBuffer(bytes: payload), pieceSize: pieceSize, limit: 100)
        }
    }
}
