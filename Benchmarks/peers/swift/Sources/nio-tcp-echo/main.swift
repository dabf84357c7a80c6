// Raw TCP echo on SwiftNIO: every byte read is written back, flushed once per read cycle. No framing at
// all, so it is the ceiling any WebSocket layer on SwiftNIO can approach. One event loop.
import NIOCore
import PeerSupport

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

try serveForever(port: PeerArguments().port) { channel in channel.pipeline.addHandler(EchoHandler()) }
