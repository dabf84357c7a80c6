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
        var handles: [TCPEchoDriver.Handle] = []
        for _ in 0..<connections {
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port).get()
            let handle = try await channel.eventLoop.submit {
                let driver = TCPEchoDriver(size: size, inFlight: inFlight)
                try channel.pipeline.syncOperations.addHandler(driver)
                return driver.handle(channel: channel)
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
final class TCPEchoDriver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What other threads hold of a driver.
    struct Handle: RoundTripHandle {
        let channel: any Channel
        let driver: NIOLoopBound<TCPEchoDriver>
        let received: SharedCount

        func start() {
            let driver = self.driver
            channel.eventLoop.execute { driver.value.start() }
        }

        /// Stops sending, closes the connection and returns the count and the latencies (nanoseconds).
        func finish() async throws -> (Int, Histogram<UInt64>) {
            let driver = self.driver
            let result = try await channel.eventLoop.submit {
                driver.value.running = false
                return (driver.value.count, driver.value.latencies)
            }.get()
            try? await channel.close()
            return result
        }
    }

    private let block: ByteBuffer
    private let inFlight: Int
    private let received = SharedCount()
    private var context: ChannelHandlerContext?
    private var sentAt: [UInt64] = []
    private var head = 0
    private var pendingBytes = 0
    var running = false
    var count = 0
    var latencies = latencyHistogram()

    init(size: Int, inFlight: Int) {
        self.block = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        self.inFlight = inFlight
    }

    /// Made on the channel's event loop.
    func handle(channel: any Channel) -> Handle {
        Handle(channel: channel, driver: NIOLoopBound(self, eventLoop: channel.eventLoop), received: received)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func start() {
        running = true
        for _ in 0..<inFlight { sendOne(flush: false) }
        context?.flush()
    }

    private func sendOne(flush: Bool) {
        guard let context else { return }
        sentAt.append(DispatchTime.now().uptimeNanoseconds)
        context.write(wrapOutboundOut(block), promise: nil)
        if flush { context.flush() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pendingBytes += unwrapInboundIn(data).readableBytes
        while pendingBytes >= block.readableBytes, head < sentAt.count {
            pendingBytes -= block.readableBytes
            _ = latencies.record(DispatchTime.now().uptimeNanoseconds - sentAt[head])
            head += 1
            count += 1
            if count & 255 == 0 { received.store(count) }
            if running { sendOne(flush: false) }
        }
        if head > 4096 {
            sentAt.removeFirst(head)
            head = 0
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
