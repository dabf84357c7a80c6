import DuplexCompression
import DuplexCore
import Testing

@Suite struct ClientNegotiationTests {
    typealias Configuration = PerMessageDeflate.Configuration
    typealias Parameters = PerMessageDeflate.Parameters
    typealias NegotiationError = PerMessageDeflate.NegotiationError

    func accept(_ header: String, _ configuration: Configuration = .init()) throws -> Parameters? {
        try PerMessageDeflate.accept(response: offers(header), configuration: configuration)
    }

    @Test func offerHeaders() {
        #expect(PerMessageDeflate.offer(configuration: .init()).headerValue == "permessage-deflate; client_max_window_bits")
        #expect(PerMessageDeflate.offer(configuration: .lowMemory).headerValue
            == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10")
        #expect(PerMessageDeflate.offer(configuration: Configuration(serverMaxWindowBits: 8, clientMaxWindowBits: 8)).headerValue
            == "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8")
    }

    @Test func offerIsAcceptedByOurOwnServer() throws {
        for configuration in [Configuration(), .lowMemory, Configuration(serverMaxWindowBits: 12, clientNoContextTakeover: true)] {
            let offer = PerMessageDeflate.offer(configuration: configuration)
            let (response, serverSide) = try #require(PerMessageDeflate.negotiate(offers: [offer], configuration: configuration))
            let clientSide = try #require(try PerMessageDeflate.accept(response: [response], configuration: configuration))
            #expect(clientSide == serverSide)
        }
    }

    @Test func noDeflateInTheResponseIsNil() throws {
        #expect(try PerMessageDeflate.accept(response: [], configuration: .init()) == nil)
        #expect(try accept("x-foo") == nil)
    }

    @Test func acceptedParameters() throws {
        #expect(try accept("permessage-deflate") == Parameters())
        #expect(try accept("permessage-deflate; server_max_window_bits=8; client_max_window_bits=12; server_no_context_takeover; client_no_context_takeover")
            == Parameters(serverMaxWindowBits: 8, clientMaxWindowBits: 12, serverNoContextTakeover: true, clientNoContextTakeover: true))
        // The client keeps the smaller window it offered when the server does not set one.
        #expect(try accept("permessage-deflate", Configuration(clientMaxWindowBits: 11))?.clientMaxWindowBits == 11)
        // A client that offered client_no_context_takeover holds to it.
        #expect(try accept("permessage-deflate", Configuration(clientNoContextTakeover: true))?.clientNoContextTakeover == true)
        #expect(try accept("permessage-deflate; server_max_window_bits=9", Configuration(serverMaxWindowBits: 10))?.serverMaxWindowBits == 9)
        #expect(try accept("permessage-deflate; client_max_window_bits=8", Configuration())?.clientMaxWindowBits == 8)
    }

    @Test(arguments: [
        ("permessage-deflate, permessage-deflate", Configuration(), NegotiationError.repeatedExtension),
        ("permessage-deflate; foo", Configuration(), .unknownParameter("foo")),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", Configuration(),
         .duplicateParameter("server_no_context_takeover")),
        ("permessage-deflate; server_max_window_bits", Configuration(), .invalidParameterValue(name: "server_max_window_bits", value: nil)),
        ("permessage-deflate; server_max_window_bits=16", Configuration(), .invalidParameterValue(name: "server_max_window_bits", value: "16")),
        ("permessage-deflate; client_max_window_bits", Configuration(), .invalidParameterValue(name: "client_max_window_bits", value: nil)),
        ("permessage-deflate; client_max_window_bits=09", Configuration(), .invalidParameterValue(name: "client_max_window_bits", value: "09")),
        ("permessage-deflate; client_no_context_takeover=x", Configuration(),
         .invalidParameterValue(name: "client_no_context_takeover", value: "x")),
        ("permessage-deflate", Configuration(serverMaxWindowBits: 10), .serverMaxWindowBitsMissing(requested: 10)),
        ("permessage-deflate; server_max_window_bits=11", Configuration(serverMaxWindowBits: 10),
         .serverMaxWindowBitsTooLarge(requested: 10, received: 11)),
        ("permessage-deflate; client_max_window_bits=12", Configuration(clientMaxWindowBits: 11),
         .clientMaxWindowBitsTooLarge(offered: 11, received: 12)),
        ("permessage-deflate", Configuration(serverNoContextTakeover: true), .serverNoContextTakeoverMissing),
    ])
    func invalidResponsesThrow(header: String, configuration: Configuration, error: NegotiationError) throws {
        let response = try WebSocketExtension.parse([header])
        #expect(throws: error) { try PerMessageDeflate.accept(response: response, configuration: configuration) }
        #expect(error.description.utf8.count < 123)
    }
}
