// swift-tools-version: 6.1
// libFuzzer targets for Duplex's parsers, kept out of the main package so that its build and CI are
// untouched. Build and run them with `Fuzz/run.sh` (see Docs/Fuzzing.md).
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let duplex: [Target.Dependency] = [
    "FuzzSupport",
    .product(name: "DuplexCore", package: "Duplex"),
    .product(name: "DuplexCompression", package: "Duplex"),
    .product(name: "NIOCore", package: "swift-nio"),
]

let package = Package(
    name: "DuplexFuzz",
    dependencies: [
        .package(name: "Duplex", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Input decoding and invariant checks shared by the fuzzers.
        .target(name: "FuzzSupport", dependencies: duplex.dropFirst().map { $0 }, swiftSettings: strict),
        // The frame decoder and the whole Connection state machine, both roles, with and without compression.
        .executableTarget(name: "fuzz-frames", dependencies: duplex, swiftSettings: strict),
        // The HTTP head parser, the server's and the client's handshake checks, extension headers and
        // permessage-deflate negotiation.
        .executableTarget(name: "fuzz-handshake", dependencies: duplex, swiftSettings: strict),
        // The permessage-deflate inflater under a message size limit.
        .executableTarget(name: "fuzz-inflate", dependencies: duplex, swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
