import NIOCore
import NIOPosix

/// Listens on 127.0.0.1:`port` with one event loop, initialises each accepted channel with
/// `initializer`, prints "PORT <n>" and serves until the process ends. For the raw SwiftNIO peers.
public func serveForever(port: Int, initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) throws -> Never {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel = try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer(initializer)
        .bind(host: "127.0.0.1", port: port).wait()
    print("PORT \(channel.localAddress?.port ?? 0)")
    try channel.closeFuture.wait()
    exit(0)
}

#if canImport(Glibc)
import Glibc
#endif
