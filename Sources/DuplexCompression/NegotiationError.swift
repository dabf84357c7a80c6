extension PerMessageDeflate {
    /// Why a server's permessage-deflate response is unacceptable to the client that offered it.
    ///
    /// The client fails the connection on any of these (close code 1010). A server never throws it:
    /// it skips an unacceptable offer instead.
    public enum NegotiationError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The response named permessage-deflate more than once.
        case repeatedExtension
        /// A parameter RFC 7692 does not define.
        case unknownParameter(String)
        /// A parameter given more than once.
        case duplicateParameter(String)
        /// A parameter whose value is not allowed: a value on a flag, a missing window size, or a
        /// window size that is not a decimal 8...15 without leading zeros.
        case invalidParameterValue(name: String, value: String?)
        /// The client asked for `server_max_window_bits` and the server did not answer it.
        case serverMaxWindowBitsMissing(requested: Int)
        /// The server answered `server_max_window_bits` with more than the client asked for.
        case serverMaxWindowBitsTooLarge(requested: Int, received: Int)
        /// The server set `client_max_window_bits` above the value the client offered.
        case clientMaxWindowBitsTooLarge(offered: Int, received: Int)
        /// The client asked for `server_no_context_takeover` and the server did not agree.
        case serverNoContextTakeoverMissing

        /// A human-readable explanation, short enough for a close reason.
        public var description: String {
            switch self {
            case .repeatedExtension: "permessage-deflate accepted more than once"
            case .unknownParameter(let name): "unknown permessage-deflate parameter \(name.prefix(40))"
            case .duplicateParameter(let name): "repeated permessage-deflate parameter \(name.prefix(40))"
            case .invalidParameterValue(let name, let value):
                "invalid permessage-deflate parameter \(name.prefix(30))=\(value.map { String($0.prefix(20)) } ?? "(none)")"
            case .serverMaxWindowBitsMissing(let requested): "server_max_window_bits=\(requested) not answered"
            case .serverMaxWindowBitsTooLarge(let requested, let received):
                "server_max_window_bits=\(received) exceeds the requested \(requested)"
            case .clientMaxWindowBitsTooLarge(let offered, let received):
                "client_max_window_bits=\(received) exceeds the offered \(offered)"
            case .serverNoContextTakeoverMissing: "server_no_context_takeover requested but not agreed"
            }
        }
    }
}
