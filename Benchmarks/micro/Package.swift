// swift-tools-version: 6.1
// Micro-benchmarks of Duplex's hot paths (ordo-one/benchmark): frame parse and encode, masking,
// incremental UTF-8 validation, deflate and inflate; time and allocations per operation.
// A package of its own so that the main build and CI never build the benchmark framework.
//   swift package --package-path Benchmarks/micro benchmark
import PackageDescription

let package = Package(
    name: "DuplexMicroBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Duplex", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "DuplexMicro",
            dependencies: [
                .product(name: "DuplexCore", package: "Duplex"),
                .product(name: "DuplexCompression", package: "Duplex"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/DuplexMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
