import DuplexTestSupport
import Duplex
import Foundation
import NIOCore
import NIOSSL
import Testing

/// `wss://` on the server, with certificates each test makes with the `openssl` command: Python
/// `websockets` and Node `ws` clients that trust only the test CA, Duplex's own client, a
/// certificate reload without a restart, and `duplex serve --tls-cert --tls-key` reloading on SIGHUP.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TLSTests {
    /// A test CA and a server certificate it signed, for `localhost` and `127.0.0.1`.
    struct Certificates {
        let directory: URL
        var ca: String { directory.appendingPathComponent("ca.pem").path }
        var certificate: String { directory.appendingPathComponent("server.pem").path }
        var key: String { directory.appendingPathComponent("server.key").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("duplex-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Duplex Test CA",
                         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            try issue(serial: "1001")
        }

        /// Writes a new server key and certificate with `serial` over the current ones.
        func issue(serial: String) throws {
            let extensions = directory.appendingPathComponent("server.ext")
            try """
                subjectAltName=DNS:localhost,IP:127.0.0.1
                basicConstraints=critical,CA:FALSE
                keyUsage=critical,digitalSignature
                extendedKeyUsage=serverAuth
                subjectKeyIdentifier=hash
                authorityKeyIdentifier=keyid,issuer
                """.write(to: extensions, atomically: true, encoding: .utf8)
            try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"])
            try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x\(serial)",
                         "-days", "2", "-extfile", "server.ext", "-out", "server.pem"])
        }

        private func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
            process.currentDirectoryURL = directory
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw InteropTests.TestFailure("openssl \(arguments.first ?? "") failed") }
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func echoServer(_ tls: ServerTLS) async throws -> (WebSocketServer, Int) {
        let server = WebSocketServer(configuration: .init(port: 0, subprotocols: .supported(["chat"]), compression: .init(), tls: tls),
                                     handler: .callbacks { ws in ws.onMessage = { ws, message in try? ws.send(message) } })
        return (server, try await server.start().port!)
    }

    /// The peer's scripted exchange over wss://, trusting only the test CA; returns its output.
    static func peerExchange(_ peer: InteropTests.Peer, url: String, ca: String) async throws -> String {
        let client = try InteropTests.PeerProcess(peer, script: peer.client,
                                                  arguments: [url, "--subprotocol", "chat", "--deflate", "on", "--ca", ca])
        let (status, output) = await runBlocking { client.finish() }
        #expect(status == 0, "\(peer) client output:\n\(output)")
        #expect(output.contains("OK binary 70000"))
        #expect(output.contains("CLOSE 1000 bye"))
        return output
    }

    @Test(arguments: InteropTests.Peer.allCases)
    func peerClientOverTLS(_ peer: InteropTests.Peer) async throws {
        let certificates = try Certificates()
        defer { certificates.remove() }
        let (server, port) = try await Self.echoServer(try ServerTLS(certificateChainPath: certificates.certificate, privateKeyPath: certificates.key))
        let output = try await Self.peerExchange(peer, url: "wss://localhost:\(port)/", ca: certificates.ca)
        await server.shutdown()
        let tls = output.split(separator: "\n").first { $0.hasPrefix("TLS ") }.map(String.init) ?? "(no TLS line)"
        #expect(tls == "TLS TLSv1.3 http/1.1 1001", "\(peer): \(tls)")
        #expect(output.contains("EXT permessage-deflate"), "compression negotiated over TLS")
    }

    @Test func duplexClientOverTLSAndItsVerification() async throws {
        let certificates = try Certificates()
        defer { certificates.remove() }
        let (server, port) = try await Self.echoServer(try ServerTLS(certificateChainPath: certificates.certificate, privateKeyPath: certificates.key))
        var tls = WebSocketClient.defaultTLS
        tls.trustRoots = .file(certificates.ca)
        for url in ["wss://localhost:\(port)/", "wss://127.0.0.1:\(port)/"] {
            let ws = try await WebSocketClient.connect(to: url, configuration: .init(tls: tls))
            var iterator = ws.inbound.makeAsyncIterator()
            try await ws.outbound.write(.text("over TLS"))
            #expect(await iterator.next() == .text("over TLS"))
            _ = try await ws.outbound.close()
        }
        // The default trust (the system's roots) does not know the test CA.
        await #expect(throws: NIOSSLError.self) {
            _ = try await WebSocketClient.connect(to: "wss://localhost:\(port)/")
        }
        // A plain ws:// client on the TLS port fails (the server drops what is not TLS) and the
        // server goes on serving.
        await #expect(throws: (any Error).self) {
            _ = try await WebSocketClient.connect(to: "ws://localhost:\(port)/", configuration: .init(handshakeTimeout: .seconds(3)))
        }
        let again = try await WebSocketClient.connect(to: "wss://localhost:\(port)/", configuration: .init(tls: tls))
        _ = try await again.outbound.close()
        await server.shutdown()
    }

    /// `duplex connect` over wss://: the test CA with --ca, refused without it, accepted with --insecure.
    @Test func connectCommandVerifiesOrIsToldNotTo() async throws {
        let certificates = try Certificates()
        defer { certificates.remove() }
        let (server, port) = try await Self.echoServer(try ServerTLS(certificateChainPath: certificates.certificate, privateKeyPath: certificates.key))
        func connect(_ options: [String]) async throws -> (status: Int32, output: String, errors: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
                .deletingLastPathComponent().appendingPathComponent("duplex")
            process.arguments = ["connect", "wss://localhost:\(port)/", "--send", "secure"] + options
            let (stdout, stderr) = (Pipe(), Pipe())
            process.standardOutput = stdout
            process.standardError = stderr
            process.standardInput = FileHandle.nullDevice
            try process.run()
            return await runBlocking {
                let output = stdout.fileHandleForReading.readDataToEndOfFile()
                let errors = stderr.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
            }
        }
        let trusted = try await connect(["--ca", certificates.ca])
        #expect(trusted.status == 0, "\(trusted.errors)")
        #expect(trusted.output == "secure\n")
        let unknown = try await connect([])
        #expect(unknown.status == 2)
        #expect(unknown.errors.contains("cannot connect") && unknown.errors.lowercased().contains("certificate"), "\(unknown.errors)")
        let insecure = try await connect(["--insecure"])
        #expect(insecure.status == 0, "\(insecure.errors)")
        #expect(insecure.output == "secure\n")
        await server.shutdown()
    }

    @Test func reloadServesTheNewCertificateToNewConnections() async throws {
        let certificates = try Certificates()
        defer { certificates.remove() }
        let tls = try ServerTLS(certificateChainPath: certificates.certificate, privateKeyPath: certificates.key)
        let (server, port) = try await Self.echoServer(tls)
        let before = try await Self.peerExchange(.python, url: "wss://localhost:\(port)/", ca: certificates.ca)
        #expect(before.contains("TLS TLSv1.3 http/1.1 1001"))

        try certificates.issue(serial: "2002")
        try tls.reload()
        let after = try await Self.peerExchange(.python, url: "wss://localhost:\(port)/", ca: certificates.ca)
        #expect(after.contains("TLS TLSv1.3 http/1.1 2002"))

        // A broken file is refused and the current certificate stays in use.
        try "not a certificate".write(toFile: certificates.certificate, atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try tls.reload() }
        let still = try await Self.peerExchange(.python, url: "wss://localhost:\(port)/", ca: certificates.ca)
        #expect(still.contains("TLS TLSv1.3 http/1.1 2002"))
        await server.shutdown()
    }

    @Test func serveCommandReloadsOnSIGHUP() async throws {
        let certificates = try Certificates()
        defer { certificates.remove() }
        let (process, firstLine) = try await ServeProcess.launch([
            "serve", "--port", "0", "--log-level", "warning", "--subprotocol", "chat",
            "--tls-cert", certificates.certificate, "--tls-key", certificates.key,
        ])
        defer { if process.isRunning { process.terminate() } }
        #expect(firstLine.hasPrefix("duplex: echo server listening on wss://127.0.0.1:"))
        let port = try #require(ServeProcess.port(in: firstLine))
        let url = "wss://localhost:\(port)/"
        #expect(try await Self.peerExchange(.python, url: url, ca: certificates.ca).contains(" 1001"))

        try certificates.issue(serial: "3003")
        kill(process.processIdentifier, SIGHUP)
        // The signal is handled asynchronously: try until the new certificate shows, for 5 seconds.
        var served = ""
        for _ in 0..<25 {
            served = try await Self.peerExchange(.python, url: url, ca: certificates.ca)
            if served.contains(" 3003") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(served.contains("TLS TLSv1.3 http/1.1 3003"), "\(served)")
        #expect(process.isRunning)
    }
}
