public import Foundation

/// `duplex serve` started as a user starts it, for the tests of several test targets: the
/// executable built beside the test bundle, on a free port, with its output read for the port.
public enum ServeProcess {
    /// The `duplex` executable built beside this test bundle.
    public static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("duplex")
    }

    /// Starts `duplex` with `arguments` and returns the process and the first line it printed
    /// (empty if it printed none before closing its output).
    public static func launch(_ arguments: [String], environment: [String: String] = [:]) async throws -> (process: Process, firstLine: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Read on a thread of its own: a blocking read on the cooperative pool (two threads on a
        // two-core machine) would stall every other test meanwhile.
        let firstLine = await runBlocking {
            var text = ""
            while !text.contains("\n") {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text
        }
        return (process, firstLine)
    }

    /// The port in `duplex serve`'s first line (`duplex: echo server listening on ws://127.0.0.1:PORT/`).
    public static func port(in firstLine: String) -> Int? {
        firstLine.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }
    }

    /// Starts `duplex serve --port 0 --log-level error` with `arguments` and returns the process and
    /// the port it printed.
    public static func start(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Process, Int) {
        let (process, text) = try await launch(["serve", "--port", "0", "--log-level", "error"] + arguments, environment: environment)
        guard let port = port(in: text) else {
            process.terminate()
            throw TestFailure("duplex serve printed no address: \(text)")
        }
        return (process, port)
    }
}

/// A test's own failure, with what went wrong.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
