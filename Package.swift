// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Duplex",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "DuplexCore", targets: ["DuplexCore"]),
        .library(name: "DuplexCompression", targets: ["DuplexCompression"]),
        .library(name: "Duplex", targets: ["Duplex"]),
        .library(name: "DuplexPubSub", targets: ["DuplexPubSub"]),
        .library(name: "DuplexPostgres", targets: ["DuplexPostgres"]),
        .executable(name: "duplex", targets: ["duplex"]),
        .executable(name: "autobahn-client", targets: ["autobahn-client"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Sans-I/O protocol core: frames, handshake, close, UTF-8. No sockets, loops or tasks.
        .target(
            name: "DuplexCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // permessage-deflate (RFC 7692): negotiation and the zlib codec. The only module that knows zlib.
        .target(
            name: "DuplexCompression",
            dependencies: [
                "DuplexCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strict
        ),
        // Transport on SwiftNIO: server, client, async and callback APIs.
        .target(
            name: "Duplex",
            dependencies: [
                "DuplexCore",
                "DuplexCompression",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Channels, presence and the Backplane protocol with the in-process broker.
        .target(
            name: "DuplexPubSub",
            dependencies: [
                "Duplex",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The PostgreSQL LISTEN/NOTIFY backplane. The only module that knows PostgreSQL.
        .target(
            name: "DuplexPostgres",
            dependencies: [
                "Duplex",
                "DuplexPubSub",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "duplex",
            dependencies: [
                "Duplex",
                "DuplexPubSub",
                "DuplexPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "autobahn-client",
            dependencies: [
                "Duplex",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "DuplexCoreTests", dependencies: ["DuplexCore"], swiftSettings: strict),
        .testTarget(
            name: "DuplexCompressionTests",
            dependencies: ["DuplexCompression", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DuplexTests",
            dependencies: [
                "Duplex",
                "DuplexTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DuplexPubSubTests",
            dependencies: ["DuplexPubSub", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),
        // What several test targets share: `duplex serve` as a process, a plain HTTP GET, blocking waits
        // off the cooperative pool.
        .target(
            name: "DuplexTestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/DuplexTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "DuplexPostgresTests",
            dependencies: ["DuplexPostgres", "DuplexTestSupport", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(name: "BrowserTests", dependencies: ["Duplex", "DuplexTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "InteropTests",
            dependencies: ["Duplex", "DuplexTestSupport", .product(name: "NIOSSL", package: "swift-nio-ssl")],
            exclude: ["peers"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
