import ArgumentParser

@main
struct DuplexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplex",
        abstract: "A WebSocket server, client and benchmark.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self
    )
}
