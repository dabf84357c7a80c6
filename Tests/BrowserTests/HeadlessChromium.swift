import Duplex
import DuplexTestSupport
import Foundation
import Synchronization

/// Headless Chromium (Debian's `chromium`) driven through the Chrome DevTools Protocol, spoken
/// over Duplex's own WebSocket client: open a page, evaluate JavaScript in it, close.
final class HeadlessChromium: Sendable {
    let process: Process
    let profile: URL
    private let devTools: WebSocketClientConnection
    private let session = Mutex<String?>(nil)
    private let ids = Mutex(0)
    /// The answers to commands, by id, as their JSON text; events are dropped.
    private let answers = Mutex<[Int: String]>([:])

    /// Starts Chromium on `url` and attaches to its page. Fails with what is missing when there is
    /// no Chromium (set CHROMIUM to its path if it is not `chromium` on the PATH).
    static func open(_ url: String, timeout: Duration = .seconds(30)) async throws -> HeadlessChromium {
        let executable = try findExecutable()
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("duplex-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--user-data-dir=\(profile.path)", url,
        ]
        process.standardOutput = FileHandle.nullDevice
        let log = profile.appendingPathComponent("stderr.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw TestFailure("cannot write \(log.path)") }
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        do {
            // Chromium writes the port it picked, and the browser's DevTools path, to this file.
            let deadline = ContinuousClock.now + timeout
            var lines: [Substring] = []
            while lines.count < 2 {
                guard process.isRunning else { throw TestFailure("chromium exited (\(process.terminationStatus)): \(try String(contentsOf: log, encoding: .utf8).suffix(2000))") }
                guard ContinuousClock.now < deadline else { throw TestFailure("chromium opened no DevTools port within \(timeout)") }
                try await Task.sleep(for: .milliseconds(50))
                lines = ((try? String(contentsOf: profile.appendingPathComponent("DevToolsActivePort"), encoding: .utf8)) ?? "").split(separator: "\n")
            }
            let devTools = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(lines[0])\(lines[1])")
            let browser = HeadlessChromium(process: process, profile: profile, devTools: devTools)
            var page: String?
            while page == nil {
                let targets = try await browser.call("Target.getTargets", [:])
                let infos = (targets["targetInfos"] as? [[String: Any]]) ?? []
                page = infos.first { $0["type"] as? String == "page" && ($0["url"] as? String ?? "").hasPrefix(url) }?["targetId"] as? String
                guard ContinuousClock.now < deadline else { throw TestFailure("chromium shows no page for \(url): \(infos)") }
                if page == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let attached = try await browser.call("Target.attachToTarget", ["targetId": page!, "flatten": true])
            guard let session = attached["sessionId"] as? String else { throw TestFailure("no DevTools session: \(attached)") }
            browser.session.withLock { $0 = session }
            return browser
        } catch {
            process.terminate()
            try? FileManager.default.removeItem(at: profile)
            throw error
        }
    }

    private init(process: Process, profile: URL, devTools: WebSocketClientConnection) {
        self.process = process
        self.profile = profile
        self.devTools = devTools
        Task { [weak self] in
            for await message in devTools.inbound {
                guard let text = message.text,
                      let answer = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                      let id = answer["id"] as? Int else { continue }
                self?.answers.withLock { $0[id] = text }
            }
        }
    }

    /// The value of the JavaScript `expression` in the page (awaited when it is a promise), as JSON.
    func evaluate(_ expression: String) async throws -> Any? {
        let result = try await call("Runtime.evaluate",
                                         ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw TestFailure("JavaScript failed: \(expression): \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Polls `expression` until it is `true`.
    func waitUntil(_ expression: String, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await evaluate(expression) as? Bool != true {
            guard ContinuousClock.now < deadline else { throw TestFailure("the page never got to \(expression) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Closes the browser (asking first, then terminating it) and removes its profile.
    func close() async {
        _ = try? await call("Browser.close", [:], session: false)
        _ = try? await devTools.outbound.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { process.terminate() }
        while process.isRunning, ContinuousClock.now < deadline + .seconds(5) { try? await Task.sleep(for: .milliseconds(50)) }
        try? FileManager.default.removeItem(at: profile)
    }

    /// Sends one DevTools command (to the page's session once attached, unless `session` is false)
    /// and returns its result.
    private func call(_ method: String, _ parameters: [String: Any], session: Bool = true,
                      timeout: Duration = .seconds(15)) async throws -> [String: Any] {
        let id = ids.withLock { $0 += 1; return $0 }
        var command: [String: Any] = ["id": id, "method": method, "params": parameters]
        if session, let name = self.session.withLock({ $0 }) { command["sessionId"] = name }
        try await devTools.outbound.write(.text(String(decoding: try JSONSerialization.data(withJSONObject: command), as: UTF8.self)))
        let deadline = ContinuousClock.now + timeout
        while true {
            if let text = answers.withLock({ $0.removeValue(forKey: id) }) {
                let answer = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
                if let error = answer["error"] { throw TestFailure("DevTools \(method) failed: \(error)") }
                return answer["result"] as? [String: Any] ?? [:]
            }
            guard ContinuousClock.now < deadline else { throw TestFailure("DevTools gave no answer to \(method) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    private static func findExecutable() throws -> String {
        if let given = ProcessInfo.processInfo.environment["CHROMIUM"] { return given }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") + ["/usr/bin"] {
            for name in ["chromium", "chromium-browser"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
                return "\(folder)/\(name)"
            }
        }
        throw TestFailure("chromium is not installed: run scripts/install-test-deps.sh (apt-get install chromium), or set CHROMIUM")
    }
}
