import DuplexCompression
import DuplexCore
import Testing

/// Parses one `Sec-WebSocket-Extensions` value.
func offers(_ header: String) throws -> [WebSocketExtension] { try WebSocketExtension.parse([header]) }

@Suite struct ServerNegotiationTests {
    typealias Configuration = PerMessageDeflate.Configuration
    typealias Parameters = PerMessageDeflate.Parameters

    /// The server's response header value and agreed parameters, or nil when it declined.
    func negotiate(_ header: String, _ configuration: Configuration = .init()) throws -> (String, Parameters)? {
        try PerMessageDeflate.negotiate(offers: offers(header), configuration: configuration).map { ($0.response.headerValue, $0.parameters) }
    }

    @Test func bareOfferIsAcceptedBare() throws {
        let result = try #require(try negotiate("permessage-deflate"))
        #expect(result.0 == "permessage-deflate")
        #expect(result.1 == Parameters())
    }

    @Test func otherExtensionsAndNoOfferGiveNil() throws {
        #expect(try negotiate("x-webkit-deflate-frame") == nil)
        #expect(PerMessageDeflate.negotiate(offers: [], configuration: .init()) == nil)
    }

    @Test func extensionNameIsCaseInsensitive() throws {
        #expect(try negotiate("PerMessage-Deflate")?.0 == "permessage-deflate")
    }

    @Test func serverNoContextTakeoverIsHonouredAndCanBeImposed() throws {
        let asked = try #require(try negotiate("permessage-deflate; server_no_context_takeover"))
        #expect(asked.0 == "permessage-deflate; server_no_context_takeover")
        #expect(asked.1 == Parameters(serverNoContextTakeover: true))
        let imposed = try #require(try negotiate("permessage-deflate", Configuration(serverNoContextTakeover: true)))
        #expect(imposed.0 == "permessage-deflate; server_no_context_takeover")
    }

    @Test func clientNoContextTakeoverIsEchoedOrImposed() throws {
        #expect(try negotiate("permessage-deflate; client_no_context_takeover")?.1 == Parameters(clientNoContextTakeover: true))
        let imposed = try #require(try negotiate("permessage-deflate", Configuration(clientNoContextTakeover: true)))
        #expect(imposed.0 == "permessage-deflate; client_no_context_takeover")
        #expect(imposed.1.clientNoContextTakeover)
    }

    @Test(arguments: [(offered: 12, configured: 15, agreed: 12), (10, 12, 10), (14, 11, 11), (9, 9, 9), (15, 15, 15)])
    func serverMaxWindowBitsIsAtMostTheOffer(offered: Int, configured: Int, agreed: Int) throws {
        let result = try #require(try negotiate("permessage-deflate; server_max_window_bits=\(offered)", Configuration(serverMaxWindowBits: configured)))
        #expect(result.0 == "permessage-deflate; server_max_window_bits=\(agreed)")
        #expect(result.1.serverMaxWindowBits == agreed)
    }

    @Test func serverAnnouncesASmallerOwnWindowUnasked() throws {
        #expect(try negotiate("permessage-deflate", Configuration(serverMaxWindowBits: 11))?.0 == "permessage-deflate; server_max_window_bits=11")
        #expect(try negotiate("permessage-deflate", Configuration(serverMaxWindowBits: 8))?.0 == "permessage-deflate; server_max_window_bits=8")
    }

    @Test func offerDemandingAnEightBitServerWindowIsAccepted() throws {
        let accepted = try #require(try negotiate("permessage-deflate; server_max_window_bits=8"))
        #expect(accepted.0 == "permessage-deflate; server_max_window_bits=8")
        #expect(accepted.1.serverMaxWindowBits == 8)
    }

    @Test func clientMaxWindowBitsOnlyWhenOffered() throws {
        let small = Configuration(clientMaxWindowBits: 10)
        #expect(try negotiate("permessage-deflate", small)?.0 == "permessage-deflate")  // MUST NOT send it
        #expect(try negotiate("permessage-deflate", small)?.1.clientMaxWindowBits == 15)
        #expect(try negotiate("permessage-deflate; client_max_window_bits", small)?.0 == "permessage-deflate; client_max_window_bits=10")
        #expect(try negotiate("permessage-deflate; client_max_window_bits=9", small)?.0 == "permessage-deflate; client_max_window_bits=9")
        #expect(try negotiate("permessage-deflate; client_max_window_bits=12", small)?.1.clientMaxWindowBits == 10)
        #expect(try negotiate("permessage-deflate; client_max_window_bits=8", Configuration(clientMaxWindowBits: 8))?.1.clientMaxWindowBits == 8)
        // With the default configuration the server does not limit the client.
        #expect(try negotiate("permessage-deflate; client_max_window_bits")?.0 == "permessage-deflate")
    }

    @Test func everyParameterTogether() throws {
        let result = try #require(try negotiate(
            "permessage-deflate; client_max_window_bits=11; server_max_window_bits=12; client_no_context_takeover; server_no_context_takeover",
            Configuration(clientMaxWindowBits: 9)))
        #expect(result.0 == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9")
        #expect(result.1 == Parameters(serverMaxWindowBits: 12, clientMaxWindowBits: 9, serverNoContextTakeover: true, clientNoContextTakeover: true))
    }

    @Test(arguments: [
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // duplicate
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",        // duplicate
        "permessage-deflate; x-unknown",                                                // unknown
        "permessage-deflate; server_max_window_bits",                                    // value required
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=x",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; server_no_context_takeover=1",                              // value on a flag
        "permessage-deflate; client_no_context_takeover=true",
    ])
    func malformedOfferIsSkipped(header: String) throws {
        #expect(try negotiate(header) == nil)
        // ...and the next offer in the same header is taken instead.
        let result = try #require(try negotiate(header + ", permessage-deflate; client_no_context_takeover"))
        #expect(result.0 == "permessage-deflate; client_no_context_takeover")
    }

    @Test func quotedValuesAreAccepted() throws {
        #expect(try negotiate("permessage-deflate; server_max_window_bits=\"10\"")?.1.serverMaxWindowBits == 10)
    }

    @Test func firstAcceptableOfferWins() throws {
        let result = try #require(try negotiate(
            "x-foo, permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10, permessage-deflate"))
        #expect(result.0 == "permessage-deflate; server_max_window_bits=10")
    }

    @Test func lowMemoryServer() throws {
        let result = try #require(try negotiate("permessage-deflate; client_max_window_bits", .lowMemory))
        #expect(result.0 == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10")
    }
}
