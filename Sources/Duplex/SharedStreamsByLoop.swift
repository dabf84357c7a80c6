import DuplexCompression
import NIOConcurrencyHelpers
import NIOCore

/// One ``PerMessageDeflate/SharedStreams`` per event loop, so that a server's connections on one loop
/// share the zlib streams of the directions that reset after every message.
///
/// Each set is bound to its loop: it is made and used only there.
final class SharedStreamsByLoop: Sendable {
    private let byLoop = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<PerMessageDeflate.SharedStreams>]>([:])

    /// The set of `eventLoop`, made on first use; call it on that loop.
    func streams(on eventLoop: any EventLoop) -> PerMessageDeflate.SharedStreams {
        let key = ObjectIdentifier(eventLoop)
        if let bound = byLoop.withLockedValue({ $0[key] }) { return bound.value }
        let streams = PerMessageDeflate.SharedStreams()
        let bound = NIOLoopBound(streams, eventLoop: eventLoop)
        byLoop.withLockedValue { $0[key] = bound }
        return streams
    }
}
