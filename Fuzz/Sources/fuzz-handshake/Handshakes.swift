import DuplexCompression
import DuplexCore
import FuzzSupport
import NIOCore

/// The server's side of a parsed request: the refusal or the acceptance, checked by a client.
func checkServer(_ head: HTTPRequestHead, configuration: PerMessageDeflate.Configuration) {
    let request: ServerHandshake.Request
    do {
        request = try ServerHandshake.validate(head)
    } catch {
        let (response, body) = ServerHandshake.response(rejecting: error)
        require(Parse.roundTrip(response: response) == .response(response), "refusal \(response.status) does not parse")
        require(response.status == error.status && body.readableBytes > 0, "refusal of \(error) is \(response.status)")
        return
    }
    _ = try? OriginPolicy.sameOrigin.check(origin: request.origin, host: request.host)
    _ = try? OriginPolicy(allowed: ["https://*.example.com", "null"]).check(origin: request.origin, host: request.host)

    var accepted: [WebSocketExtension] = []
    if let (answer, parameters) = PerMessageDeflate.negotiate(offers: request.extensions, configuration: configuration) {
        checkParameters(parameters)
        accepted = [answer]
    }
    let subprotocol = request.subprotocols.first
    let response = ServerHandshake.response(accepting: request, subprotocol: subprotocol, extensions: accepted)
    guard case .response(let parsed) = Parse.roundTrip(response: response) else {
        fatalError("invariant broken: the 101 for \(head) does not parse")
    }
    let client = ClientHandshake(host: request.host, target: head.target, subprotocols: request.subprotocols,
                                 extensions: request.extensions, key: request.key)
    do {
        let result = try client.validate(parsed)
        require(result.subprotocol == subprotocol, "client agreed \(String(describing: result.subprotocol))")
        require(result.extensions == accepted, "client agreed \(result.extensions), server \(accepted)")
    } catch {
        fatalError("invariant broken: the client refuses the server's 101: \(error)\n\(head)\n\(parsed)")
    }
}

/// The client's side of a parsed response to an offer made from `configuration`.
func checkClient(_ head: HTTPResponseHead, configuration: PerMessageDeflate.Configuration) {
    let client = ClientHandshake(host: "example.com", target: "/chat", subprotocols: ["chat", "superchat"],
                                 extensions: [PerMessageDeflate.offer(configuration: configuration)],
                                 key: "dGhlIHNhbXBsZSBub25jZQ==")
    guard let accepted = try? client.validate(head) else { return }
    require(accepted.subprotocol.map { ["chat", "superchat"].contains($0) } ?? true, "unoffered subprotocol agreed")
    guard let parameters = try? PerMessageDeflate.accept(response: accepted.extensions, configuration: configuration) else {
        return
    }
    checkParameters(parameters)
    require(parameters.clientMaxWindowBits <= configuration.clientMaxWindowBits, "client window over the offer")
    require(parameters.serverMaxWindowBits <= configuration.serverMaxWindowBits, "server window over the offer")
    require(parameters.serverNoContextTakeover || !configuration.serverNoContextTakeover, "server context takeover kept")
    require(parameters.clientNoContextTakeover || !configuration.clientNoContextTakeover, "client context takeover kept")
}

/// Agreed parameters are within the RFC's bounds and build a codec for each end.
func checkParameters(_ parameters: PerMessageDeflate.Parameters) {
    require((8...15).contains(parameters.serverMaxWindowBits) && (8...15).contains(parameters.clientMaxWindowBits),
            "agreed windows out of 8...15: \(parameters)")
    for isServer in [true, false] { _ = makeCodec(parameters, isServer: isServer) }
}
