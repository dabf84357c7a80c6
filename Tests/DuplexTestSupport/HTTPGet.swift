import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain HTTP GET of `path` on 127.0.0.1:`port`: the whole response, read until the server closes.
public func httpGet(port: Int, _ path: String) async throws -> String {
    let collected = NIOLockedValueBox(ByteBuffer())
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in channel.pipeline.addHandler(Collector(collected: collected)) }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    try await channel.closeFuture.get()
    return String(buffer: collected.withLockedValue { $0 })
}

private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let collected: NIOLockedValueBox<ByteBuffer>
    init(collected: NIOLockedValueBox<ByteBuffer>) { self.collected = collected }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        _ = collected.withLockedValue { $0.writeBuffer(&buffer) }
    }
}
