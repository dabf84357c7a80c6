import ArgumentParser

/// `duplex bench`: load generation against a server (`duplex bench URL`, the default), and the
/// comparison of WebSocket push with HTTP polling (`duplex bench polling`).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure WebSocket servers: load an echo server, or compare push with polling.",
        subcommands: [LoadBench.self, PollingBench.self],
        defaultSubcommand: LoadBench.self
    )
}
