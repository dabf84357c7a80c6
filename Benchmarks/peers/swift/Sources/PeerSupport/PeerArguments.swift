/// What every peer reads from its command line: `<port> [--deflate]`.
public struct PeerArguments: Sendable {
    /// The port to listen on, on 127.0.0.1.
    public var port: Int
    /// Whether to negotiate permessage-deflate (where the library supports it).
    public var deflate: Bool

    /// Reads `CommandLine.arguments`; exits with a usage line when the port is missing or not a number.
    public init(_ arguments: [String] = CommandLine.arguments) {
        let rest = arguments.dropFirst()
        guard let first = rest.first(where: { !$0.hasPrefix("--") }), let port = Int(first) else {
            print("usage: \(arguments.first ?? "peer") <port> [--deflate]")
            exit(2)
        }
        self.port = port
        self.deflate = rest.contains("--deflate")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
