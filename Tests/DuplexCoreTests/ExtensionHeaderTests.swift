import DuplexCore
import Testing

@Suite struct ExtensionHeaderTests {
    typealias P = WebSocketExtension.Parameter

    @Test func parsesDeflateOffer() throws {
        let parsed = try WebSocketExtension.parse(["permessage-deflate; client_max_window_bits"])
        #expect(parsed == [WebSocketExtension(name: "permessage-deflate", parameters: [P(name: "client_max_window_bits")])])
        #expect(parsed[0].parameter("CLIENT_MAX_WINDOW_BITS") == P(name: "client_max_window_bits", value: nil))
    }

    @Test func parsesListsAcrossHeaders() throws {
        let parsed = try WebSocketExtension.parse([
            "permessage-deflate; client_max_window_bits=10;server_no_context_takeover, x-foo",
            "mux ; a = b ; c=\"12\"",
        ])
        #expect(parsed == [
            WebSocketExtension(name: "permessage-deflate", parameters: [
                P(name: "client_max_window_bits", value: "10"), P(name: "server_no_context_takeover"),
            ]),
            WebSocketExtension(name: "x-foo"),
            WebSocketExtension(name: "mux", parameters: [P(name: "a", value: "b"), P(name: "c", value: "12")]),
        ])
    }

    @Test func quotedTokenValueIsUnquoted() throws {
        #expect(try WebSocketExtension.parse(["x; a=\"b\""]) == [WebSocketExtension(name: "x", parameters: [P(name: "a", value: "b")])])
        #expect(try WebSocketExtension.parse(["x; a=\"\\b\""])[0].parameters[0].value == "b")
    }

    @Test func emptyListElementsAreIgnored() throws {
        #expect(try WebSocketExtension.parse([", x"]) == [WebSocketExtension(name: "x")])
        #expect(try WebSocketExtension.parse(["x , , y,"]).map(\.name) == ["x", "y"])
        #expect(try WebSocketExtension.parse([]) == [])
    }

    @Test(arguments: [
        ("x;;", ExtensionHeaderError.expectedToken(header: "x;;", offset: 2)),
        ("x; a=", .expectedToken(header: "x; a=", offset: 5)),
        ("x; =b", .expectedToken(header: "x; =b", offset: 3)),
        ("; a", .expectedToken(header: "; a", offset: 0)),
        ("x; a=\"b c\"", .quotedValueNotToken(header: "x; a=\"b c\"", value: "b c")),
        ("x; a=\"\"", .quotedValueNotToken(header: "x; a=\"\"", value: "")),
        ("x; a=\"b,c\"", .quotedValueNotToken(header: "x; a=\"b,c\"", value: "b,c")),
        ("x; a=\"b", .unterminatedQuotedString(header: "x; a=\"b")),
        ("x y", .unexpectedCharacter(header: "x y", offset: 2)),
        ("x; a=b c", .unexpectedCharacter(header: "x; a=b c", offset: 7)),
        ("x; a=b=c", .unexpectedCharacter(header: "x; a=b=c", offset: 6)),
        ("x/y", .unexpectedCharacter(header: "x/y", offset: 1)),
        ("", .emptyList(header: "")),
        (" , ", .emptyList(header: " , ")),
    ])
    func malformed(header: String, error: ExtensionHeaderError) {
        #expect(throws: error) { try WebSocketExtension.parse(["ok", header]) }
        #expect(!error.description.isEmpty)
    }

    @Test func formats() {
        let deflate = WebSocketExtension(name: "permessage-deflate", parameters: [
            P(name: "client_max_window_bits", value: "10"), P(name: "server_no_context_takeover"),
        ])
        #expect(deflate.headerValue == "permessage-deflate; client_max_window_bits=10; server_no_context_takeover")
        #expect(WebSocketExtension.format([deflate, WebSocketExtension(name: "x")])
            == "permessage-deflate; client_max_window_bits=10; server_no_context_takeover, x")
        #expect(WebSocketExtension.format([]) == "")
        #expect(WebSocketExtension(name: "x", parameters: [P(name: "a", value: "b \"c\"")]).headerValue == "x; a=\"b \\\"c\\\"\"")
    }

    @Test(arguments: [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=15; server_no_context_takeover, permessage-deflate",
        "a; b=c; d, e; f=g",
    ])
    func roundTrips(header: String) throws {
        let parsed = try WebSocketExtension.parse([header])
        #expect(WebSocketExtension.format(parsed) == header)
        #expect(try WebSocketExtension.parse([WebSocketExtension.format(parsed)]) == parsed)
    }

    @Test func normalisesWhitespaceAndQuotes() throws {
        let parsed = try WebSocketExtension.parse(["  a ;b = \"1\"  ,c  "])
        #expect(WebSocketExtension.format(parsed) == "a; b=1, c")
    }
}
