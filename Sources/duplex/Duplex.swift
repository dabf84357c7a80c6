import ArgumentParser
import Foundation

@main
struct DuplexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplex",
        abstract: "A WebSocket server, client and benchmark.",
        subcommands: [Serve.self, Connect.self, Bench.self],
        defaultSubcommand: Serve.self
    )

    /// Parses and runs, with `serve`'s options completed from the environment and a configuration
    /// file (see ``ConfigurationSources``).
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let subcommands = ["serve", "connect", "bench", "help", "-h", "--help", "--version"]
        if arguments.first.map({ !subcommands.contains($0) || $0 == "serve" }) ?? true {
            let serveArguments = arguments.first == "serve" ? Array(arguments.dropFirst()) : arguments
            do {
                arguments = ["serve"] + (try ConfigurationSources.serveArguments(
                    commandLine: serveArguments, environment: ProcessInfo.processInfo.environment))
            } catch {
                exit(withError: ValidationError("\(error)"))
            }
        }
        await main(arguments)
    }
}
