public import DuplexCompression
public import DuplexCore

/// permessage-deflate parameters chosen by one input byte: window bits 8...15 for each side and the
/// two no-context-takeover flags.
public func deflateParameters(_ byte: UInt8, _ second: UInt8) -> PerMessageDeflate.Parameters {
    PerMessageDeflate.Parameters(
        serverMaxWindowBits: 8 + Int(byte & 0x7),
        clientMaxWindowBits: 8 + Int(second & 0x7),
        serverNoContextTakeover: byte & 0x8 != 0,
        clientNoContextTakeover: second & 0x8 != 0)
}

/// A codec for one end of a connection, with no minimum size so that every message is compressed.
public func makeCodec(_ parameters: PerMessageDeflate.Parameters, isServer: Bool) -> any MessageCompression {
    do {
        return try PerMessageDeflate.makeCodec(parameters: parameters, isServer: isServer,
                                               configuration: .init(minimumSize: 0))
    } catch {
        fatalError("parameters in 8...15 were refused: \(error)")
    }
}
