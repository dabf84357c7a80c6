public import DuplexCore

extension PerMessageDeflate {
    /// The permessage-deflate offer a client sends in `Sec-WebSocket-Extensions`.
    ///
    /// It lists, in this order: `server_no_context_takeover` and `client_no_context_takeover` when the
    /// configuration wants them, `server_max_window_bits=N` when the configured server window is
    /// under 15, and always `client_max_window_bits`, with the configured client window as its value
    /// when under 15 and without a value otherwise (so the server may choose one).
    /// - Parameter configuration: What this client wants. Default `.init()`.
    /// - Returns: The offer, such as `permessage-deflate; client_max_window_bits`.
    public static func offer(configuration: Configuration = .init()) -> WebSocketExtension {
        var offer = WebSocketExtension(name: name)
        if configuration.serverNoContextTakeover { offer.parameters.append(.init(name: "server_no_context_takeover")) }
        if configuration.clientNoContextTakeover { offer.parameters.append(.init(name: "client_no_context_takeover")) }
        let serverWindow = configuration.serverWindowBits
        if serverWindow < 15 { offer.parameters.append(.init(name: "server_max_window_bits", value: String(serverWindow))) }
        let clientWindow = configuration.clientWindowBits
        offer.parameters.append(.init(name: "client_max_window_bits", value: clientWindow < 15 ? String(clientWindow) : nil))
        return offer
    }

    /// Checks the server's answer to ``offer(configuration:)``, as a client (RFC 7692 §5, §7.1).
    ///
    /// Only permessage-deflate entries are looked at; whether the server accepted extensions the
    /// client did not offer is the handshake's business. On a thrown error the client fails the
    /// connection (close code 1010).
    /// - Parameters:
    ///   - response: The server's `Sec-WebSocket-Extensions`, parsed.
    ///   - configuration: The configuration the offer was made from. Default `.init()`.
    /// - Returns: The agreed parameters, or nil when the server did not accept permessage-deflate.
    ///   The client's window is the server's `client_max_window_bits`, or the window the client
    ///   offered when the server gave none.
    /// - Throws: ``NegotiationError`` when the response names permessage-deflate more than once,
    ///   has an unknown, repeated or malformed parameter, answers `server_max_window_bits` with more
    ///   than was requested (or not at all), sets `client_max_window_bits` above the offered value,
    ///   or omits a requested `server_no_context_takeover`.
    public static func accept(
        response: [WebSocketExtension],
        configuration: Configuration = .init()
    ) throws(NegotiationError) -> Parameters? {
        let accepted = response.filter(DeflateParameterList.isDeflate)
        guard let answer = accepted.first else { return nil }
        guard accepted.count == 1 else { throw .repeatedExtension }
        let list = try DeflateParameterList(answer, isOffer: false)

        if configuration.serverNoContextTakeover, !list.serverNoContextTakeover { throw .serverNoContextTakeoverMissing }

        let requestedServerWindow = configuration.serverWindowBits
        if requestedServerWindow < 15 {
            guard let granted = list.serverMaxWindowBits else { throw .serverMaxWindowBitsMissing(requested: requestedServerWindow) }
            guard granted <= requestedServerWindow else {
                throw .serverMaxWindowBitsTooLarge(requested: requestedServerWindow, received: granted)
            }
        }

        let offeredClientWindow = configuration.clientWindowBits
        var clientWindow = offeredClientWindow
        if case .value(let bits) = list.clientMaxWindowBits {
            guard bits <= offeredClientWindow else { throw .clientMaxWindowBitsTooLarge(offered: offeredClientWindow, received: bits) }
            clientWindow = bits
        }

        return Parameters(
            serverMaxWindowBits: list.serverMaxWindowBits ?? 15,
            clientMaxWindowBits: clientWindow,
            serverNoContextTakeover: list.serverNoContextTakeover,
            clientNoContextTakeover: list.clientNoContextTakeover || configuration.clientNoContextTakeover
        )
    }
}
