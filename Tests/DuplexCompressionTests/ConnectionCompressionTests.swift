import DuplexCompression
import DuplexCore
import NIOCore
import Testing

/// The codec driven by DuplexCore's `Connection`, as the transport will use it.
@Suite struct ConnectionCompressionTests {
    /// Moves every queued frame of `from` onto the wire and into `to`; returns the frames' RSV bits and sizes.
    @discardableResult
    func pipe(_ from: inout Connection, into to: inout Connection) -> [(rsv: UInt8, length: Int)] {
        var wire = ByteBuffer()
        var frames: [(UInt8, Int)] = []
        while let frame = from.nextOutboundFrame() {
            frames.append((frame.header.rsv, frame.payload.readableBytes))
            frame.header.write(into: &wire)
            var payload = frame.payload
            wire.writeBuffer(&payload)
        }
        to.receive(wire)
        return frames
    }

    func messages(_ connection: inout Connection) -> [WebSocketMessage] {
        var messages: [WebSocketMessage] = []
        while let event = connection.nextEvent() {
            if case .message(let message) = event { messages.append(message) }
        }
        return messages
    }

    @Test func fragmentedCompressedMessagesBothWays() throws {
        let offer = PerMessageDeflate.offer(configuration: .init())
        let (response, serverParameters) = try #require(PerMessageDeflate.negotiate(offers: [offer], configuration: .init()))
        let clientParameters = try #require(try PerMessageDeflate.accept(response: [response], configuration: .init()))
        let fragmenting = Connection.Configuration(outboundFragmentSize: 1_000)
        var server = Connection(role: .server, configuration: fragmenting,
                                compression: try PerMessageDeflate.makeCodec(parameters: serverParameters, isServer: true, configuration: .init()))
        var client = Connection(role: .client, configuration: fragmenting,
                                compression: try PerMessageDeflate.makeCodec(parameters: clientParameters, isServer: false, configuration: .init()))

        let text = String(decoding: repetitiveBytes(10_000) + Array("é, ü, 😀".utf8) + repetitiveBytes(40_000), as: UTF8.self)
        let binary = randomBytes(5_000)
        try client.send(.text(text))
        try client.send(.binary(binary))
        try client.send(.text("hi"))  // under the threshold: sent as it is
        let frames = pipe(&client, into: &server)
        #expect(frames.first?.rsv == 0b100)
        #expect(frames.last?.rsv == 0)
        #expect(messages(&server) == [.text(text), .binary(binary), .text("hi")])

        try server.send(.text(text))
        pipe(&server, into: &client)
        #expect(messages(&client) == [.text(text)])
    }

    @Test func bombClosesWithMessageTooBig() throws {
        var client = Connection(role: .client,
                                compression: try PerMessageDeflate.makeCodec(parameters: .init(), isServer: false, configuration: .init()))
        var server = Connection(role: .server, configuration: .init(maxMessageSize: 1 << 20),
                                compression: try PerMessageDeflate.makeCodec(parameters: .init(), isServer: true, configuration: .init()))
        try client.send(.binary([UInt8](repeating: 0, count: 8 << 20)))
        pipe(&client, into: &server)
        var closed: CloseInfo?
        while let event = server.nextEvent() { if case .closed(let info) = event { closed = info } }
        #expect(closed?.code == .messageTooBig)
    }
}
