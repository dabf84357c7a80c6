import NIOConcurrencyHelpers
public import NIOSSL

/// A server's TLS (`wss://`): a certificate chain and private key from PEM files, TLS 1.2 or
/// later, ALPN `http/1.1`. ``reload()`` reads the files again without a restart (after a
/// certificate renewal, say on SIGHUP); connections opened afterwards use the new certificate,
/// open ones keep theirs.
public final class ServerTLS: Sendable {
    /// The PEM file with the certificate chain, leaf first.
    public let certificateChainPath: String
    /// The PEM file with the private key.
    public let privateKeyPath: String
    /// The oldest TLS version accepted. Default TLS 1.2.
    public let minimumVersion: TLSVersion
    private let context: NIOLockedValueBox<NIOSSLContext>

    /// Loads the certificate chain and key.
    /// - Throws: swift-nio-ssl's error when a file cannot be read, is not PEM, or the key does not
    ///   match the certificate.
    public init(certificateChainPath: String, privateKeyPath: String, minimumVersion: TLSVersion = .tlsv12) throws {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.minimumVersion = minimumVersion
        context = NIOLockedValueBox(try Self.makeContext(certificateChainPath, privateKeyPath, minimumVersion))
    }

    /// Reads the files again; new connections get the new certificate. On failure the current one
    /// stays in use.
    /// - Throws: as ``init(certificateChainPath:privateKeyPath:minimumVersion:)``.
    public func reload() throws {
        let fresh = try Self.makeContext(certificateChainPath, privateKeyPath, minimumVersion)
        context.withLockedValue { $0 = fresh }
    }

    /// A handler for a new connection, with the current certificate.
    func makeHandler() -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: context.withLockedValue { $0 })
    }

    private static func makeContext(_ chainPath: String, _ keyPath: String, _ minimumVersion: TLSVersion) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(chainPath)
        guard !chain.isEmpty else { throw ServerTLSError.noCertificate(chainPath) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
        configuration.minimumTLSVersion = minimumVersion
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Why ``ServerTLS`` could not use its files, besides swift-nio-ssl's own errors.
public enum ServerTLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The certificate file holds no PEM certificate.
    case noCertificate(String)

    public var description: String {
        switch self {
        case .noCertificate(let path): "no PEM certificate in \(path)"
        }
    }
}
