public import Duplex
import NIOConcurrencyHelpers

/// The backplane of a single process: `publish` delivers at once, in the caller's thread. The
/// default; it needs no set-up and loses nothing while the process runs.
public final class InProcessBackplane: Backplane {
    private let deliver = NIOLockedValueBox<(@Sendable (String, WebSocketMessage) -> Void)?>(nil)

    public init() {}

    public func start(deliver: @escaping @Sendable (String, WebSocketMessage) -> Void) async throws {
        self.deliver.withLockedValue { $0 = deliver }
    }

    public func publish(_ message: WebSocketMessage, to channel: String) {
        deliver.withLockedValue { $0 }?(channel, message)
    }

    public func shutdown() async {
        deliver.withLockedValue { $0 = nil }
    }
}
