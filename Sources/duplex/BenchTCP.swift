import ArgumentParser
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// `duplex bench --mode tcp`: the echo workload without WebSocket framing, against a raw TCP echo
/// server. Each connection keeps P blocks of S bytes in flight; a block counts as echoed once S more
/// bytes have come back. It gives the ceiling a WebSocket layer can approach on the same machine, and
/// the load generator's own ceiling (no framing, masking or UTF-8 work on either side).
extension LoadBench {
    func runTCP() async throws -> [(String, String)] {
        let (host, port) = try tcpAddress()
        let size = max(self.size, 1)
        let inFlight = self.inFlight
        let group = MultiThreadedEventLoopGroup.singleton
        var handles: [ChannelEchoHandle<TCPEchoDriver>] = []
        for _ in 0..<connections {
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port).get()
            let handle = try await channel.eventLoop.submit {
                let driver = TCPEchoDriver(size: size, inFlight: inFlight)
                try channel.pipeline.syncOperations.addHandler(driver)
                return ChannelEchoHandle(channel: channel, driver: driver)
            }.get()
            handles.append(handle)
        }
        return try await measureRoundTrips(handles, mode: "tcp", size: size)
    }

    /// Host and port from `tcp://host:port` (or any `scheme://host:port/...`).
    private func tcpAddress() throws -> (String, Int) {
        guard let components = URLComponents(string: url), let host = components.host, let port = components.port else {
            throw ValidationError("--mode tcp needs an address like tcp://127.0.0.1:9001, not \(url)")
        }
        return (host, port)
    }
}

/// One raw TCP echo connection, on its event loop: keeps `inFlight` blocks of `size` bytes out and
/// records each block's round trip.
final class TCPEchoDriver: ChannelInboundHandler, ChannelEchoDriver {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let block: ByteBuffer
    private let inFlight: Int
    private var context: ChannelHandlerContext?
    private var pendingBytes = 0
    var running = false
    var clock = RoundTripClock()
    private(set) var failure: (any Error)?

    init(size: Int, inFlight: Int) {
        self.block = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        self.inFlight = inFlight
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func start() {
        running = true
        for _ in 0..<inFlight { sendOne() }
        context?.flush()
    }

    private func sendOne() {
        guard let context else { return }
        clock.sent()
        context.write(wrapOutboundOut(block), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pendingBytes += unwrapInboundIn(data).readableBytes
        while pendingBytes >= block.readableBytes, clock.echoed() {
            pendingBytes -= block.readableBytes
            if running { sendOne() }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if failure == nil { failure = ChannelError.eof }  // the run closes it only after the results are in
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        context.close(promise: nil)
    }
}
