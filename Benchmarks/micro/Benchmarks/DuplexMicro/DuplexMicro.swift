import Benchmark
import DuplexCompression
import DuplexCore
import NIOCore

// Each benchmark measures one operation, or a batch of `Fixtures.framesPerBatch` with the scaling factor
// `.kilo`, so that the figures are per frame.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )
    let perFrame = Benchmark.Configuration(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        scalingFactor: .kilo
    )

    // MARK: frames

    for size in [32, 16384] {
        let frames = Fixtures.maskedFrames(count: Fixtures.framesPerBatch, size: size)
        Benchmark("FrameDecoder parse+unmask, \(size) B masked", configuration: perFrame) { benchmark in
            var buffer = frames
            var decoder = FrameDecoder(expectsMaskedFrames: true)
            benchmark.startMeasurement()
            while let output = try decoder.next(from: &buffer) { blackHole(output) }
        }
        Benchmark("Connection receive, \(size) B binary messages", configuration: perFrame) { benchmark in
            var connection = Connection(role: .server)
            benchmark.startMeasurement()
            connection.receive(frames)
            while let event = connection.nextEvent() { blackHole(event) }
        }
    }

    // A 1 MiB message that arrives as a server's reads deliver it: 16 reads of 64 KiB (and the header).
    let large = Fixtures.maskedFrames(count: 1, size: 1 << 20)
    let reads = stride(from: 0, to: large.readableBytes, by: 65536).map {
        large.getSlice(at: $0, length: min(65536, large.readableBytes - $0))!
    }
    Benchmark("Connection receive, 1 MiB binary message in 64 KiB reads") { benchmark in
        var connection = Connection(role: .server)
        benchmark.startMeasurement()
        for read in reads { connection.receive(read) }
        while let event = connection.nextEvent() { blackHole(event) }
    }

    let small = ByteBuffer(repeating: 0x78, count: 32)
    Benchmark("Connection send + header encode, 32 B binary", configuration: perFrame) { benchmark in
        var connection = Connection(role: .server)
        var wire = ByteBuffer()
        wire.reserveCapacity(Fixtures.framesPerBatch * 16)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try connection.send(.binary(small))
            while let frame = connection.nextOutboundFrame() {
                frame.header.write(into: &wire)
                blackHole(frame.payload)
            }
        }
    }
    Benchmark("FrameHeader encode", configuration: perFrame) { benchmark in
        var wire = ByteBuffer()
        wire.reserveCapacity(Fixtures.framesPerBatch * 16)
        for index in benchmark.scaledIterations {
            FrameHeader(opcode: .binary, payloadLength: index * 97).write(into: &wire)
        }
        blackHole(wire)
    }

    // MARK: opening handshake

    // What a server does with a browser's request, short of the socket: parse the head, validate it,
    // build the 101 and write it out.
    let request = ByteBuffer(string: """
        GET /chat?room=1 HTTP/1.1\r
        Host: example.com:8080\r
        User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r
        Accept: */*\r
        Accept-Language: en-US,en;q=0.5\r
        Accept-Encoding: gzip, deflate, br, zstd\r
        Sec-WebSocket-Version: 13\r
        Origin: https://example.com\r
        Sec-WebSocket-Extensions: permessage-deflate\r
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
        Connection: keep-alive, Upgrade\r
        Pragma: no-cache\r
        Cache-Control: no-cache\r
        Upgrade: websocket\r
        \r

        """)
    Benchmark("Server handshake: parse, validate, write the 101") { benchmark in
        var response = ByteBuffer()
        response.reserveCapacity(256)
        for _ in benchmark.scaledIterations {
            var parser = HTTPHeadParser()
            var bytes = request
            guard let head = try parser.parseRequest(&bytes) else { return benchmark.error("incomplete head") }
            let accepted = try ServerHandshake.validate(head)
            response.clear()
            ServerHandshake.response(accepting: accepted, subprotocol: nil).write(into: &response)
            blackHole(response)
        }
    }

    // MARK: masking

    for size in [32, 16384, 1 << 20] {
        Benchmark("Mask in place, \(size) B") { benchmark in
            var buffer = ByteBuffer(repeating: 0x78, count: size)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { buffer.applyMask(Fixtures.key) }
            blackHole(buffer)
        }
    }

    // MARK: UTF-8

    let ascii = Fixtures.asciiText(size: 16384)
    let mixed = Fixtures.mixedText(size: 16384)
    for (name, text) in [("ASCII", ascii), ("mixed 1-4 byte", mixed)] {
        Benchmark("UTF-8 validate 16 KiB \(name), whole") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(UTF8Validator.isValid(text)) }
        }
        Benchmark("UTF-8 validate 16 KiB \(name), incremental in 1000 B pieces") { benchmark in
            for _ in benchmark.scaledIterations {
                var validator = UTF8Validator()
                var index = text.readerIndex
                while index < text.writerIndex {
                    let length = min(1000, text.writerIndex - index)
                    blackHole(validator.validate(text.getSlice(at: index, length: length)!))
                    index += length
                }
                blackHole(validator.isComplete)
            }
        }
    }

    // MARK: permessage-deflate

    for size in [32, 16384] {
        let text = Fixtures.asciiText(size: size)
        for takeover in [true, false] {
            let parameters = PerMessageDeflate.Parameters(serverNoContextTakeover: !takeover)
            let history = takeover ? "context takeover" : "no context takeover"
            Benchmark("Deflate \(size) B JSON text, \(history)") { benchmark in
                let codec = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { blackHole(try codec.compress(text)) }
            }
        }
        Benchmark("Inflate \(size) B JSON text, no context takeover") { benchmark in
            let parameters = PerMessageDeflate.Parameters(serverNoContextTakeover: true)
            let sender = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: true)
            let receiver = try PerMessageDeflate.makeCodec(parameters: parameters, isServer: false)
            guard let compressed = try sender.compress(text) else { return benchmark.error("the text was sent uncompressed") }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var output = ByteBuffer()
                try receiver.decompress(compressed, isFinal: true, into: &output, limit: 1 << 24)
                blackHole(output)
            }
        }
    }
}
