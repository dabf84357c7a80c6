import Foundation

/// `duplex serve`'s options from three sources, in one documented precedence: the command line
/// over the environment over a configuration file over the built-in defaults.
///
/// - File: a JSON object named by `--config FILE` or `DUPLEX_SERVE_CONFIG`, whose keys are the
///   long option names without dashes (`{"port": 9000, "chat": true, "allow-origin": ["https://a.example"]}`).
/// - Environment: `DUPLEX_SERVE_` and the option name in capitals with `_` for `-`
///   (`DUPLEX_SERVE_MAX_CONNECTIONS=100`); a list option takes comma-separated values; a flag takes
///   `true`/`false` (or `1`/`0`).
/// - Command line: as usual. An option given on the command line replaces what the other sources
///   say for it (lists are replaced, not merged).
///
/// The result is an argument list for the parser, so unknown names and bad values get its errors.
enum ConfigurationSources {
    /// Flags whose `false` is spelled `--no-NAME` (the others are off by default).
    static let invertibleFlags: Set<String> = ["json-pings"]

    enum Failure: Error, CustomStringConvertible {
        case unreadableFile(String, String)
        case notAnObject(String)
        case badValue(String, String)

        var description: String {
            switch self {
            case .unreadableFile(let path, let reason): "cannot read the configuration file \(path): \(reason)"
            case .notAnObject(let path): "the configuration file \(path) is not a JSON object of options"
            case .badValue(let key, let source): "the value of \(key) in \(source) is neither a string, a number, a boolean nor a list of them"
            }
        }
    }

    /// A source's value for one option.
    enum Value: Equatable {
        case flag(Bool)
        case values([String])
    }

    /// The arguments to parse for `serve`: `commandLine` (the arguments after `serve`) with what the
    /// file and the environment add in front of it.
    static func serveArguments(commandLine: [String], environment: [String: String]) throws -> [String] {
        let configPath = value(of: "--config", in: commandLine) ?? environment["DUPLEX_SERVE_CONFIG"]
        var merged: [String: Value] = [:]
        if let configPath { merged = try fileOptions(configPath) }
        for (key, value) in environmentOptions(environment) { merged[key] = value }
        let given = Set(commandLine.compactMap { argument -> String? in
            guard argument.hasPrefix("--") else { return nil }
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            return name.hasPrefix("no-") && invertibleFlags.contains(String(name.dropFirst(3))) ? String(name.dropFirst(3)) : name
        })
        var arguments: [String] = []
        for key in merged.keys.sorted() where !given.contains(key) && key != "config" {
            switch merged[key]! {
            case .flag(true): arguments.append("--\(key)")
            case .flag(false): if invertibleFlags.contains(key) { arguments.append("--no-\(key)") }
            case .values(let values): for value in values { arguments += ["--\(key)", value] }
            }
        }
        return arguments + commandLine
    }

    static func fileOptions(_ path: String) throws -> [String: Value] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Failure.unreadableFile(path, error.localizedDescription)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw Failure.notAnObject(path) }
        var options: [String: Value] = [:]
        for (key, raw) in object {
            switch raw {
            case let number as NSNumber where String(cString: number.objCType) == "c": options[key] = .flag(number.boolValue)
            case let number as NSNumber: options[key] = .values([number.stringValue])
            case let string as String: options[key] = .values([string])
            case let list as [Any]:
                let strings = list.compactMap { ($0 as? String) ?? ($0 as? NSNumber)?.stringValue }
                guard strings.count == list.count else { throw Failure.badValue(key, path) }
                options[key] = .values(strings)
            default: throw Failure.badValue(key, path)
            }
        }
        return options
    }

    static func environmentOptions(_ environment: [String: String]) -> [String: Value] {
        var options: [String: Value] = [:]
        for (name, value) in environment where name.hasPrefix("DUPLEX_SERVE_") && name != "DUPLEX_SERVE_CONFIG" {
            let key = name.dropFirst("DUPLEX_SERVE_".count).lowercased().replacingOccurrences(of: "_", with: "-")
            switch value.lowercased() {
            case "true", "1", "yes", "on": options[key] = isFlag(key) ? .flag(true) : .values([value])
            case "false", "0", "no", "off": options[key] = isFlag(key) ? .flag(false) : .values([value])
            default: options[key] = .values(value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            }
        }
        return options
    }

    /// The boolean options of `serve`.
    static func isFlag(_ key: String) -> Bool {
        ["chat", "json-pings", "no-compression", "compression-context-takeover"].contains(key)
    }

    private static func value(of option: String, in arguments: [String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument == option, index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix(option + "=") { return String(argument.dropFirst(option.count + 1)) }
        }
        return nil
    }
}
