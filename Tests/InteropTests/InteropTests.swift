import DuplexTestSupport
import Duplex
import Foundation
import NIOCore
import Testing

/// Duplex against implementations nobody here wrote: Python `websockets` and Node `ws`, as servers and
/// as clients. `scripts/test.sh` installs both; a missing peer fails these tests rather than skipping.
@Suite(.serialized, .timeLimit(.minutes(2))) struct InteropTests {
    static let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peers")

    enum Peer: String, CaseIterable {
        case python, node

        var interpreter: String { self == .python ? "python3" : "node" }
        var server: String { self == .python ? "py_echo_server.py" : "node_echo_server.js" }
        var client: String { self == .python ? "py_client.py" : "node_client.js" }
    }

    /// A peer process whose standard output is collected.
    final class PeerProcess: Sendable {
        let process = Process()
        let output = Pipe()
        let input = Pipe()

        init(_ peer: Peer, script: String, arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [peer.interpreter, InteropTests.peers.appendingPathComponent(script).path] + arguments
            var environment = ProcessInfo.processInfo.environment
            environment["NODE_PATH"] = [environment["NODE_PATH"], "/usr/share/nodejs", "/usr/lib/nodejs"]
                .compactMap { $0 }.joined(separator: ":")
            process.environment = environment
            process.standardOutput = output
            process.standardInput = input
            try process.run()
        }

        /// Reads lines until one starts with `prefix`.
        func line(startingWith prefix: String) throws -> String {
            var pending = ""
            while true {
                let data = output.fileHandleForReading.availableData
                guard !data.isEmpty else { throw TestFailure("peer ended before printing \(prefix)") }
                pending += String(decoding: data, as: UTF8.self)
                if let line = pending.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            }
        }

        /// Waits for the process to exit and returns its status and everything it printed.
        func finish() -> (status: Int32, output: String) {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }

        func stop() {
            try? input.fileHandleForWriting.close()
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Text that compresses well.
    static let ticks = String(repeating: "{\"event\":\"tick\",\"symbol\":\"DPLX\",\"price\":101.25}\n", count: 3_000)

    @Test(arguments: Peer.allCases, [nil, PerMessageDeflate.Configuration(), .lowMemory])
    func duplexClientAgainstPeerServer(_ peer: Peer, compression: PerMessageDeflate.Configuration?) async throws {
        let server = try PeerProcess(peer, script: peer.server,
                                     arguments: ["--port", "0", "--subprotocol", "chat"] + (compression == nil ? [] : ["--deflate"]))
        defer { server.stop() }
        let port = try server.line(startingWith: "PORT ").split(separator: " ")[1]
        let ws = try await WebSocketClient.connect(
            to: "ws://127.0.0.1:\(port)/path?query=1",
            configuration: .init(subprotocols: ["other", "chat"], compression: compression))
        #expect(ws.context.subprotocol == "chat")
        let agreed = WebSocketExtension.format(ws.context.extensions)
        if let compression {
            #expect(agreed.hasPrefix("permessage-deflate"))
            #expect(agreed.contains("server_no_context_takeover") == compression.serverNoContextTakeover, "\(agreed)")
        } else {
            #expect(agreed.isEmpty)
        }
        let large = (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }
        let messages: [WebSocketMessage] = [.text("hello"), .binary(large), .text(""), .text("héllo wörld ✓ 😀"), .binary([]),
                                            .text(Self.ticks), .text(Self.ticks)]
        var iterator = ws.inbound.makeAsyncIterator()
        for message in messages {
            try await ws.outbound.write(message)
            #expect(await iterator.next() == message)
        }
        let info = try await ws.outbound.close(code: .normalClosure, reason: "bye")
        #expect(info.code == .normalClosure)
        #expect(info.wasClean)
    }

    /// The peer client's permessage-deflate offer: none, its library's default, or small windows
    /// without context takeover.
    @Test(arguments: Peer.allCases, [nil, "on", "small"])
    func peerClientAgainstDuplexServer(_ peer: Peer, deflate: String?) async throws {
        let server = WebSocketServer(
            configuration: .init(port: 0, subprotocols: .supported(["chat"]), compression: .init()),
            handler: .callbacks { ws in ws.onMessage = { ws, message in try? ws.send(message) } })
        let port = try await server.start().port!
        let client = try PeerProcess(peer, script: peer.client,
                                     arguments: ["ws://127.0.0.1:\(port)/", "--subprotocol", "chat"] + (deflate.map { ["--deflate", $0] } ?? []))
        let (status, output) = await runBlocking { client.finish() }
        await server.shutdown()
        #expect(status == 0, "\(peer) client output:\n\(output)")
        let agreed = output.split(separator: "\n").first { $0.hasPrefix("EXT") }.map(String.init) ?? "(none)"
        switch deflate {
        case nil: #expect(agreed == "EXT ", "\(agreed)")
        case "small":
            #expect(agreed.contains("permessage-deflate") && agreed.contains("server_no_context_takeover")
                && agreed.contains("server_max_window_bits=10"), "\(agreed)")
        default: #expect(agreed.contains("permessage-deflate"), "\(agreed)")
        }
        #expect(output.contains("OK text"))
        #expect(output.contains("OK text"))
        #expect(output.contains("OK binary 70000"))
        #expect(output.contains("CLOSE 1000 bye"))
    }
}
