import DuplexCore

/// The parameters of one `permessage-deflate` offer or response, checked against RFC 7692 §7.1:
/// only the four known names, each at most once, flags without a value, window sizes as a decimal
/// 8...15 without leading zeros.
struct DeflateParameterList: Equatable {
    /// How `client_max_window_bits` appeared.
    enum ClientWindowBits: Equatable {
        case absent
        /// Given without a value, allowed in an offer only.
        case withoutValue
        case value(Int)
    }

    var serverNoContextTakeover = false
    var clientNoContextTakeover = false
    var serverMaxWindowBits: Int?
    var clientMaxWindowBits = ClientWindowBits.absent

    /// Parses `ext`'s parameters.
    /// - Parameters:
    ///   - isOffer: whether `ext` is a client's offer, where `client_max_window_bits` may have no value.
    /// - Throws: the first problem found, as a ``PerMessageDeflate/NegotiationError``.
    init(_ ext: WebSocketExtension, isOffer: Bool) throws(PerMessageDeflate.NegotiationError) {
        var seen: Set<String> = []
        for parameter in ext.parameters {
            let name = Self.lowercased(parameter.name)
            guard seen.insert(name).inserted else { throw .duplicateParameter(parameter.name) }
            let invalid = PerMessageDeflate.NegotiationError.invalidParameterValue(name: parameter.name, value: parameter.value)
            switch name {
            case "server_no_context_takeover":
                guard parameter.value == nil else { throw invalid }
                serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard parameter.value == nil else { throw invalid }
                clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let bits = Self.windowBits(parameter.value) else { throw invalid }
                serverMaxWindowBits = bits
            case "client_max_window_bits":
                if let value = parameter.value {
                    guard let bits = Self.windowBits(value) else { throw invalid }
                    clientMaxWindowBits = .value(bits)
                } else {
                    guard isOffer else { throw invalid }
                    clientMaxWindowBits = .withoutValue
                }
            default:
                throw .unknownParameter(parameter.name)
            }
        }
    }

    /// Whether `ext` names permessage-deflate (ASCII case-insensitively).
    static func isDeflate(_ ext: WebSocketExtension) -> Bool {
        lowercased(ext.name) == PerMessageDeflate.name
    }

    /// `value` as a window size: exactly one of "8" through "15", so no sign, space or leading zero.
    private static func windowBits(_ value: String?) -> Int? {
        guard let value, value.utf8.allSatisfy({ (0x30...0x39).contains($0) }), value.first != "0",
            let bits = Int(value), (8...15).contains(bits)
        else { return nil }
        return bits
    }

    private static func lowercased(_ string: String) -> String {
        String(decoding: string.utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
