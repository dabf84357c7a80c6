import Duplex
import Foundation
import Testing

/// `duplex serve` as a user runs it: the built executable, its printed URL, echo, and SIGTERM.
@Suite(.timeLimit(.minutes(1))) struct ServeCommandTests {
    /// The `duplex` executable built beside this test bundle.
    static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("duplex")
    }

    @Test func servesEchoPrintsItsURLAndDrainsOnSIGTERM() async throws {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["serve", "--port", "0", "--subprotocol", "chat", "--log-level", "warning"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let firstLine = await Task.detached { () -> String in
            var text = ""
            while !text.contains("\n") {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text
        }.value
        let url = try #require(firstLine.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(firstLine.hasPrefix("duplex: echo server listening on ws://127.0.0.1:"))

        let ws = try await WebSocketClient.connect(to: url, configuration: .init(subprotocols: ["other", "chat"]))
        #expect(ws.context.subprotocol == "chat")
        var iterator = ws.inbound.makeAsyncIterator()
        try await ws.outbound.write(.text("ping?"))
        #expect(await iterator.next() == .text("ping?"))
        try await ws.outbound.write(.binary([1, 2, 3]))
        #expect(await iterator.next() == .binary([1, 2, 3]))

        process.terminate()  // SIGTERM
        let info = await ws.outbound.closeInfo()
        #expect(info.code == .goingAway)
        #expect(info.wasClean)
        let status = await Task.detached { process.waitUntilExit(); return process.terminationStatus }.value
        #expect(status == 0)
    }
}
