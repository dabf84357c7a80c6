public import Foundation

/// `duplex serve` started as a user starts it, for the tests of several test targets: the
/// executable built beside the test bundle, on a free port, with its output read for the port.
public enum ServeProcess {
    /// The `duplex` executable built beside this test bundle.
    public static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("duplex")
    }

    /// Starts `duplex serve --port 0 --log-level error` with `arguments` and returns the process and
    /// the port it printed.
    public static func start(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Process, Int) {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--port", "0", "--log-level", "error"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Read on a thread of its own: a blocking read on the cooperative pool (two threads on a
        // two-core machine) would stall every other test meanwhile.
        let text = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            Thread.detachNewThread {
                var text = ""
                while !text.contains("\n") {
                    let data = output.fileHandleForReading.availableData
                    if data.isEmpty { break }
                    text += String(decoding: data, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }
        }
        guard let port = text.split(separator: ":").last.flatMap({ Int($0.prefix { $0.isNumber }) }) else {
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
