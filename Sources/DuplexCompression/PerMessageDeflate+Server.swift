public import DuplexCore

extension PerMessageDeflate {
    /// Chooses the first acceptable permessage-deflate offer of a client, as a server (RFC 7692 §5, §7.1).
    ///
    /// Offers are walked in the client's order; offers of other extensions are ignored. An offer is
    /// skipped when it is malformed (an unknown or repeated parameter, a value on a
    /// `*_no_context_takeover` flag, a window size that is missing on `server_max_window_bits`, not
    /// a decimal 8...15, or written with a leading zero).
    ///
    /// The response:
    /// - includes `server_no_context_takeover` when the client asked for it or the configuration wants it;
    /// - includes `client_no_context_takeover` when the client offered it or the configuration wants it;
    /// - answers `server_max_window_bits=N` with the smaller of N and the configured window, and
    ///   otherwise announces the configured window when it is under 15;
    /// - includes `client_max_window_bits` only when the client offered it and the configured client
    ///   window is under 15, with the smaller of that and the client's value.
    /// - Parameters:
    ///   - offers: The client's `Sec-WebSocket-Extensions`, parsed, in order.
    ///   - configuration: What this server wants. Default `.init()`.
    /// - Returns: The extension to send back and the agreed parameters, or nil when no offer is acceptable.
    public static func negotiate(
        offers: [WebSocketExtension],
        configuration: Configuration = .init()
    ) -> (response: WebSocketExtension, parameters: Parameters)? {
        for offer in offers where DeflateParameterList.isDeflate(offer) {
            guard let list = try? DeflateParameterList(offer, isOffer: true) else { continue }
            if let accepted = accept(list, configuration: configuration) { return accepted }
        }
        return nil
    }

    /// The response to a well-formed offer, or nil when it cannot be honoured.
    private static func accept(
        _ offer: DeflateParameterList,
        configuration: Configuration
    ) -> (response: WebSocketExtension, parameters: Parameters)? {
        var parameters = Parameters()
        var response = WebSocketExtension(name: name)

        if offer.serverNoContextTakeover || configuration.serverNoContextTakeover {
            parameters.serverNoContextTakeover = true
            response.parameters.append(.init(name: "server_no_context_takeover"))
        }
        if offer.clientNoContextTakeover || configuration.clientNoContextTakeover {
            parameters.clientNoContextTakeover = true
            response.parameters.append(.init(name: "client_no_context_takeover"))
        }

        let ownWindow = configuration.serverWindowBits
        if let requested = offer.serverMaxWindowBits {
            // The answer may not exceed the request.
            parameters.serverMaxWindowBits = min(requested, ownWindow)
            response.parameters.append(.init(name: "server_max_window_bits", value: String(parameters.serverMaxWindowBits)))
        } else if ownWindow < 15 {
            parameters.serverMaxWindowBits = ownWindow
            response.parameters.append(.init(name: "server_max_window_bits", value: String(ownWindow)))
        }

        let wantedClientWindow = configuration.clientWindowBits
        let offeredClientWindow: Int? =
            switch offer.clientMaxWindowBits {
            case .absent: nil  // the client does not understand the parameter: it must not be sent
            case .withoutValue: 15
            case .value(let bits): bits
            }
        if let offeredClientWindow, wantedClientWindow < 15 {
            parameters.clientMaxWindowBits = min(wantedClientWindow, offeredClientWindow)
            response.parameters.append(.init(name: "client_max_window_bits", value: String(parameters.clientMaxWindowBits)))
        }
        return (response, parameters)
    }
}
