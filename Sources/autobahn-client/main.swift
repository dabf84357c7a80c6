// Walks the Autobahn|Testsuite fuzzingserver protocol with the Duplex client, echoing every message
// from the callback API (on the event loop, so an echo leaves before anything read after it is acted on).
// Environment: AB_URL (default ws://127.0.0.1:9001), AB_AGENT (default duplex), AB_DEFLATE=0 to offer
// no permessage-deflate (offered by default, so that cases 12.* and 13.* run).
import Duplex
import Foundation
import NIOConcurrencyHelpers
import NIOCore

let base = ProcessInfo.processInfo.environment["AB_URL"] ?? "ws://127.0.0.1:9001"
let agent = ProcessInfo.processInfo.environment["AB_AGENT"] ?? "duplex"
let limits = Connection.Configuration(maxFrameSize: 64 << 20, maxMessageSize: 64 << 20)
let deflate = ProcessInfo.processInfo.environment["AB_DEFLATE"] == "0" ? nil : PerMessageDeflate.Configuration()
let configuration = WebSocketClient.Configuration(connection: limits, compression: deflate)

/// Connects to `path`, echoes (or collects) every message, and returns the collected ones on close.
func run(_ path: String, echo: Bool) async throws -> [String] {
    let received = NIOLockedValueBox<[String]>([])
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let resumed = NIOLockedValueBox(false)
        let resume: @Sendable (Result<Void, any Error>) -> Void = { result in
            if resumed.withLockedValue({ done in defer { done = true }; return !done }) { continuation.resume(with: result) }
        }
        Task {
            do {
                try await WebSocketClient.connect(to: base + path, configuration: configuration) { ws in
                    ws.onMessage = { ws, message in
                        if echo {
                            try? ws.send(message)
                        } else {
                            received.withLockedValue { $0.append(message.text ?? "") }
                        }
                    }
                    ws.onClose = { _, _ in resume(.success(())) }
                }
            } catch {
                resume(.failure(error))
            }
        }
    }
    return received.withLockedValue { $0 }
}

let count = Int(try await run("/getCaseCount", echo: false).first ?? "") ?? 0
print("autobahn-client: \(count) cases against \(base) as \(agent)")
for index in 1...max(count, 1) where count > 0 {
    do {
        _ = try await run("/runCase?case=\(index)&agent=\(agent)", echo: true)
    } catch {
        print("case \(index): \(error)")
    }
}
_ = try await run("/updateReports?agent=\(agent)", echo: false)
print("autobahn-client: reports updated")
