import DuplexCore
import NIOCore
import Testing

@Suite struct FrameDecoderTests {
    func decodeAll(_ bytes: [UInt8], masked: Bool) throws -> [Frame] {
        var decoder = FrameDecoder(expectsMaskedFrames: masked)
        var buffer = ByteBuffer(bytes: bytes)
        var frames: [Frame] = []
        while let output = try decoder.next(from: &buffer) {
            if case .frame(let frame) = output { frames.append(frame) }
        }
        return frames
    }

    // RFC 6455 §5.7, the examples verbatim.
    @Test func rfcSingleFrameUnmaskedText() throws {
        let frames = try decodeAll([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], masked: false)
        #expect(frames.count == 1)
        #expect(frames[0].fin && frames[0].opcode == .text)
        #expect(String(buffer: frames[0].payload) == "Hello")
    }

    @Test func rfcSingleFrameMaskedText() throws {
        let frames = try decodeAll([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], masked: true)
        #expect(frames.count == 1)
        #expect(frames[0].header.maskingKey == MaskingKey(0x37, 0xfa, 0x21, 0x3d))
        #expect(String(buffer: frames[0].payload) == "Hello")
    }

    @Test func rfcFragmentedUnmaskedText() throws {
        let frames = try decodeAll([0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f], masked: false)
        #expect(frames.map(\.fin) == [false, true])
        #expect(frames.map(\.opcode) == [.text, .continuation])
        #expect(frames.map { String(buffer: $0.payload) } == ["Hel", "lo"])
    }

    @Test func rfcPingAndMaskedPong() throws {
        let ping = try decodeAll([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], masked: false)
        #expect(ping[0].opcode == .ping && String(buffer: ping[0].payload) == "Hello")
        let pong = try decodeAll([0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], masked: true)
        #expect(pong[0].opcode == .pong && String(buffer: pong[0].payload) == "Hello")
    }

    @Test func rfc256ByteAnd64KiBBinary() throws {
        let medium = try decodeAll([0x82, 0x7E, 0x01, 0x00] + [UInt8](repeating: 7, count: 256), masked: false)
        #expect(medium[0].payload.readableBytes == 256 && medium[0].opcode == .binary)
        let large = try decodeAll([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0] + [UInt8](repeating: 9, count: 65536), masked: false)
        #expect(large[0].payload.readableBytes == 65536)
    }

    @Test func encoderUsesMinimalLengthForms() {
        for (length, expectedHeader) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let header = FrameHeader(opcode: .binary, payloadLength: length)
            var buffer = ByteBuffer()
            header.write(into: &buffer)
            #expect(buffer.readableBytes == expectedHeader)
            #expect(header.encodedSize == expectedHeader)
        }
        var buffer = ByteBuffer()
        FrameHeader(opcode: .text, maskingKey: MaskingKey(0x37, 0xfa, 0x21, 0x3d), payloadLength: 5).write(into: &buffer)
        #expect(buffer.bytes == [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d])
    }

    @Test func encodeDecodeRoundTripAllLengths() throws {
        for length in [0, 1, 125, 126, 127, 65535, 65536, 100_000] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let wire = wireFrame(opcode: 2, payload: payload)
            let frames = try decodeAll(wire.bytes, masked: true)
            #expect(frames.count == 1)
            #expect(frames[0].payload.bytes == payload)
        }
    }

    /// `FrameHeader.encoded(payload:)` puts the header and the wire payload in one buffer of exactly
    /// their size, which decodes to the same frame, masked or not.
    @Test func encodedFramesDecodeToTheirHeaderAndPayload() throws {
        let key = MaskingKey(0x0f, 0x1e, 0x2d, 0x3c)
        for length in [0, 125, 126, 65536] {
            let payload = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            for maskingKey in [nil, key] {
                var onTheWire = payload
                if let maskingKey { onTheWire.applyMask(maskingKey) }
                let header = FrameHeader(fin: false, opcode: .binary, maskingKey: maskingKey, payloadLength: length)
                let frame = header.encoded(payload: onTheWire)
                #expect(frame.readableBytes == header.encodedSize + length)
                let decoded = try decodeAll(Array(frame.readableBytesView), masked: maskingKey != nil)
                #expect(decoded.map(\.header) == [header])
                #expect(decoded.map(\.payload) == [payload])
            }
        }
    }

    @Test func rejectsNonMinimalLengths() {
        #expect(throws: ProtocolError.nonMinimalLength) { try decodeAll([0x82, 0x7E, 0x00, 0x7D], masked: false) }
        #expect(throws: ProtocolError.nonMinimalLength) { try decodeAll([0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], masked: false) }
    }

    @Test func rejectsLengthWithHighBitSet() {
        #expect(throws: ProtocolError.lengthOverflow) { try decodeAll([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], masked: false) }
    }

    @Test func rejectsReservedOpcodes() {
        for opcode: UInt8 in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            #expect(throws: ProtocolError.reservedOpcode(opcode)) { try decodeAll([0x80 | opcode, 0x00], masked: false) }
        }
    }

    @Test func rejectsReservedBitsUnlessAllowed() throws {
        #expect(throws: ProtocolError.reservedBitsSet(4)) { try decodeAll([0xC1, 0x00], masked: false) }
        #expect(throws: ProtocolError.reservedBitsSet(2)) { try decodeAll([0xA1, 0x00], masked: false) }
        #expect(throws: ProtocolError.reservedBitsSet(1)) { try decodeAll([0x91, 0x00], masked: false) }
        var decoder = FrameDecoder(expectsMaskedFrames: false, allowedReservedBits: 0b100)
        var buffer = ByteBuffer(bytes: [0xC1, 0x00])
        guard case .frame(let frame)? = try decoder.next(from: &buffer) else { Issue.record("no frame"); return }
        #expect(frame.header.rsv1)
        // Never on a control frame.
        var control = ByteBuffer(bytes: [0xC9, 0x00])
        #expect(throws: ProtocolError.reservedBitsSet(4)) { try decoder.next(from: &control) }
    }

    @Test func masksByRole() {
        #expect(throws: ProtocolError.unmaskedClientFrame) { try decodeAll([0x81, 0x00], masked: true) }
        #expect(throws: ProtocolError.maskedServerFrame) { try decodeAll([0x81, 0x80, 1, 2, 3, 4], masked: false) }
    }

    @Test func controlFrameRules() {
        #expect(throws: ProtocolError.fragmentedControlFrame) { try decodeAll([0x09, 0x00], masked: false) }
        #expect(throws: ProtocolError.controlFrameTooLong(126)) { try decodeAll([0x89, 0x7E, 0x00, 0x7E] + [UInt8](repeating: 0, count: 126), masked: false) }
    }

    @Test func frameSizeLimitBeforePayloadArrives() {
        var decoder = FrameDecoder(expectsMaskedFrames: false, maxFrameSize: 1000)
        var buffer = ByteBuffer(bytes: [0x82, 0x7E, 0x03, 0xE9])  // 1001 bytes announced, none sent
        #expect(throws: ProtocolError.frameTooLarge(length: 1001, limit: 1000)) { try decoder.next(from: &buffer) }
    }

    @Test func byteByByteWithPartialReports() throws {
        let payload = Array("Hello, world".utf8)
        let wire = wireFrame(opcode: 1, key: MaskingKey(9, 8, 7, 6), payload: payload).bytes
        var decoder = FrameDecoder(expectsMaskedFrames: true)
        var buffer = ByteBuffer()
        var streamed: [UInt8] = []
        var frames: [Frame] = []
        for byte in wire {
            buffer.writeInteger(byte)
            while let output = try decoder.next(from: &buffer) {
                switch output {
                case .partial(_, let bytes, let offset):
                    #expect(offset == streamed.count)
                    streamed += bytes.bytes
                case .frame(let frame):
                    frames.append(frame)
                }
            }
        }
        #expect(frames.count == 1)
        #expect(frames[0].payload.bytes == payload)
        #expect(streamed == Array(payload.dropLast()))  // all but the byte that completed the frame
    }

    /// A frame of 4 KiB or more that arrives over several reads is moved out of the caller's buffer
    /// as it arrives (unmasked on the way, or copied when unmasked): the reads are left empty, the
    /// progress reports cover every byte but the last read's, and the frame that follows in the
    /// same read decodes from what is left.
    @Test(arguments: [(4096, true), (70_000, true), (70_000, false), (1_200_000, true)])
    func largeFrameOverManyReadsIsGathered(length: Int, masked: Bool) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let key: MaskingKey? = masked ? MaskingKey(0xa1, 0xb2, 0xc3, 0xd4) : nil
        let wire = (wireFrame(opcode: 2, key: key, payload: payload).bytes
            + wireFrame(opcode: 9, key: key, payload: [1, 2, 3]).bytes)
        var decoder = FrameDecoder(expectsMaskedFrames: masked)
        var streamed: [UInt8] = []
        var frames: [Frame] = []
        var cursor = 0
        var read = 1
        var buffer = ByteBuffer()  // what is left of the reads so far (as in `Connection`)
        while cursor < wire.count {
            let end = min(wire.count, cursor + read)
            buffer.writeBytes(wire[cursor..<end])
            cursor = end
            read = read * 3 + 7  // reads of every size, split anywhere, the header too
            while let output = try decoder.next(from: &buffer) {
                switch output {
                case .partial(let header, let bytes, let offset):
                    #expect(header.payloadLength == length && offset == streamed.count)
                    streamed += bytes.bytes
                case .frame(let frame):
                    frames.append(frame)
                }
            }
            // Nothing of the large frame waits in the read: only a header cut short can.
            #expect(buffer.readableBytes < 14 || frames.count == 2)
        }
        try #require(frames.count == 2)
        #expect(frames[0].payload.readableBytes == length)
        #expect(frames[0].payload.bytes == payload)
        #expect(Array(payload.prefix(streamed.count)) == streamed)
        #expect(frames[1].opcode == .ping && frames[1].payload.bytes == [1, 2, 3])
        #expect(!decoder.isInsideFrame)
    }

    /// A payload the decoder copies anyway (unmasking it out of a read buffer that the channel still
    /// holds, or gathering it from several reads) keeps room in front for a header, so that an echo
    /// of it goes to the socket as one buffer.
    @Test(arguments: [1024, 16384, 70_000])
    func copiedPayloadsKeepRoomForTheirHeader(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let wire = wireFrame(opcode: 2, key: MaskingKey(0x11, 0x22, 0x33, 0x44), payload: payload)
        let echoHeader = FrameHeader(opcode: .binary, payloadLength: length)
        var echoed = ByteBuffer()
        echoHeader.write(into: &echoed)
        echoed.writeBytes(payload)

        // Whole in one read, which `wire` still holds (as the channel holds its read buffer).
        var decoder = FrameDecoder(expectsMaskedFrames: true)
        var read = wire
        guard case .frame(var whole) = try decoder.next(from: &read) else { Issue.record("no frame"); return }
        #expect(whole.payload.bytes == payload)
        #expect(whole.payload.readerIndex >= FrameHeader.maxEncodedSize)
        #expect(echoHeader.prepend(to: &whole.payload))
        #expect(whole.payload.bytes == echoed.bytes)

        // In two reads, fed as `Connection` feeds them: gathered from 4 KiB, else left in the reads.
        let half = wire.readableBytes / 2
        var inbound = ByteBuffer()
        var gathered: Frame?
        for read in [wire.getSlice(at: 0, length: half)!, wire.getSlice(at: half, length: wire.readableBytes - half)!] {
            if inbound.readableBytes == 0 { inbound = read } else { inbound.writeImmutableBuffer(read) }
            while let output = try decoder.next(from: &inbound) {
                if case .frame(let frame) = output { gathered = frame }
            }
        }
        try #require(gathered != nil)
        #expect(gathered!.payload.bytes == payload)
        if length >= 4096 {
            #expect(gathered!.payload.readerIndex >= FrameHeader.maxEncodedSize)
            #expect(echoHeader.prepend(to: &gathered!.payload))
            #expect(gathered!.payload.bytes == echoed.bytes)
        }
    }
}

@Suite struct FrameHeaderPrependTests {
    @Test func writesTheHeaderIntoTheRoomBeforeThePayload() {
        for (length, key) in [(5, nil), (300, MaskingKey(9, 8, 7, 6)), (70_000, nil), (70_000, MaskingKey(1, 2, 3, 4))] {
            let header = FrameHeader(fin: false, rsv: 0b100, opcode: .text, maskingKey: key, payloadLength: length)
            var payload = ByteBufferAllocator().buffer(capacity: FrameHeader.maxEncodedSize + length)
            payload.moveWriterIndex(to: FrameHeader.maxEncodedSize)
            payload.moveReaderIndex(to: FrameHeader.maxEncodedSize)
            payload.writeRepeatingByte(0x5a, count: length)
            var expected = ByteBuffer()
            header.write(into: &expected)
            expected.writeRepeatingByte(0x5a, count: length)
            #expect(header.prepend(to: &payload))
            #expect(payload.bytes == expected.bytes)
        }
    }

    @Test func leavesThePayloadAloneWithoutRoomOrWhenItsStorageIsShared() {
        let header = FrameHeader(opcode: .binary, payloadLength: 3000)
        var noRoom = ByteBuffer(repeating: 1, count: 3000)
        #expect(!header.prepend(to: &noRoom))
        #expect(noRoom.readerIndex == 0 && noRoom.readableBytes == 3000)

        // Room, but another buffer uses the storage: writing there would copy the payload.
        var payload = ByteBufferAllocator().buffer(capacity: 3100)
        payload.moveWriterIndex(to: 100)
        payload.moveReaderIndex(to: 100)
        payload.writeRepeatingByte(2, count: 3000)
        let other = payload
        #expect(!header.prepend(to: &payload))
        #expect(payload.readerIndex == 100 && payload == other)

        // Less room than the header needs (4 bytes for this length).
        var tight = ByteBufferAllocator().buffer(capacity: 3003)
        tight.moveWriterIndex(to: 3)
        tight.moveReaderIndex(to: 3)
        tight.writeRepeatingByte(3, count: 3000)
        #expect(!header.prepend(to: &tight))
        #expect(tight.readerIndex == 3)
    }
}

@Suite struct MaskingTests {
    /// Every length up to past two of the 128-byte rounds (so each of the vector, 8-byte and byte
    /// tails runs alone and after the others), at every key phase, in place and into another buffer.
    @Test func maskingIsAnInvolutionAtEveryOffsetAndLength() {
        let key = MaskingKey(0xde, 0xad, 0xbe, 0xef)
        for length in 0..<300 {
            let original = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
            for phase in 0..<4 {
                let expected = original.enumerated().map { $0.element ^ key[$0.offset + phase] }
                var buffer = ByteBuffer(bytes: original)
                buffer.applyMask(key, offset: phase)
                #expect(buffer.bytes == expected, "length \(length), phase \(phase)")
                buffer.applyMask(key, offset: phase)
                #expect(buffer.bytes == original)
                var copied = [UInt8](repeating: 0, count: length)
                original.withUnsafeBytes { source in
                    copied.withUnsafeMutableBytes { destination in
                        guard let from = source.baseAddress, let to = destination.baseAddress else { return }
                        key.apply(from: from, to: to, count: length, offset: phase)
                    }
                }
                #expect(copied == expected, "copy, length \(length), phase \(phase)")
            }
        }
    }

    @Test func maskingInPiecesEqualsMaskingWhole() {
        let key = MaskingKey(1, 2, 3, 4)
        let original = (0..<100).map { UInt8($0) }
        var whole = ByteBuffer(bytes: original)
        whole.applyMask(key)
        var pieces = ByteBuffer(bytes: original)
        var offset = 0
        for size in [3, 1, 17, 8, 40, 31] {
            pieces.applyMask(key, at: offset, length: size, offset: offset)
            offset += size
        }
        #expect(pieces.bytes == whole.bytes)
    }

    /// A buffer whose storage is shared is masked into a copy in one pass (small ones by
    /// copy-on-write): the other holder keeps its bytes, the result is the same as in place, and
    /// the bytes around the range are copied as they were.
    @Test(arguments: [5, 1000, 5000, 70_000])
    func maskingASharedBufferLeavesTheOtherHolderAlone(size: Int) {
        let key = MaskingKey(0x12, 0x34, 0x56, 0x78)
        let original = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let (start, length) = (size / 5, size / 2)
        var unique = ByteBuffer(bytes: original)
        unique.applyMask(key, at: start, length: length, offset: 3)
        let held = ByteBuffer(bytes: [0xFF] + original)
        var slice = held.getSlice(at: 1, length: size)!  // shares `held`'s storage
        slice.applyMask(key, at: start, length: length, offset: 3, minimumWritableBytes: 100)
        #expect(slice.bytes == unique.bytes)
        #expect(held.bytes == [0xFF] + original)
        #expect(slice.bytes[..<start] == original[..<start])
        #expect(slice.bytes[(start + length)...] == original[(start + length)...])
        #expect(slice.bytes[start..<start + length] == ArraySlice((start..<start + length).map { original[$0] ^ key[$0 - start + 3] }))
    }
}
