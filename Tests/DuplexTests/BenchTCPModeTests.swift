import DuplexTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

/// `duplex bench --mode tcp` against a raw TCP echo server started here: the ceiling measurement.
@Suite(.timeLimit(.minutes(1))) struct BenchTCPModeTests {
    /// Writes back every byte it reads.
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
    }

    @Test func measuresRoundTripsOverRawTCP() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) } }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let run = try await BenchCommandTests.bench(["tcp://127.0.0.1:\(port)", "--mode", "tcp", "-c", "3", "-p", "4", "-s", "1000", "-d", "2"])
        #expect(run.status == 0)
        #expect(run.result["mode"] as? String == "tcp")
        #expect(run.result["connections"] as? Int == 3)
        #expect((run.result["messages"] as? Int ?? 0) > 100)
        let megabytes = try #require(run.result["mb_per_s"] as? Double)
        #expect(megabytes > 0)
        let cpu = try #require(run.result["bench_cpu_percent"] as? Int)
        #expect(cpu >= 0 && cpu <= 400)
        #expect(run.progress.contains("bench: 1 s"))
        try await server.close()
    }

    @Test func refusesAnAddressWithoutAPort() async throws {
        let process = Process()
        process.executableURL = ServeProcess.executable
        process.arguments = ["bench", "tcp://127.0.0.1", "--mode", "tcp", "-d", "1"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let message = await Task.detached {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }.value
        #expect(process.terminationStatus != 0)
        #expect(message.contains("--mode tcp needs an address like tcp://127.0.0.1:9001"))
    }
}
