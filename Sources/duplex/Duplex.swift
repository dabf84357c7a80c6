import ArgumentParser

@main
struct DuplexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplex",
        abstract: "A WebSocket server, client and benchmark.",
        subcommands: [Serve.self, Connect.self],
        defaultSubcommand: Serve.self
    )
}
