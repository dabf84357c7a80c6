import DuplexTestSupport
import Foundation
import Synchronization
import NIOCore
import NIOPosix

/// A PostgreSQL server of the test's own: a new cluster in a temporary folder (trust
/// authentication, user `duplex`), listening on 127.0.0.1 at a free port, with its Unix socket in
/// the same folder. PostgreSQL refuses to run as root, so under root its programs run as the
/// `postgres` user (made by Debian's package; `setpriv` drops to it), which then owns the folder.
/// The server is a direct child process (not daemonized by pg_ctl, whose lingering child Foundation's
/// `Process` would wait for), stopped with a signal.
final class PostgresServer: Sendable {
    let directory: String
    let port: Int
    let binaries: String
    private let postmaster = Mutex<Process?>(nil)
    var url: String { "postgres://duplex@127.0.0.1:\(port)/postgres" }
    private var dataDirectory: String { directory + "/data" }

    /// Makes the cluster and starts it. Throws a `TestFailure` that says what is missing.
    static func start() async throws -> PostgresServer {
        let binaries = try findBinaries()
        guard let template = strdup(NSTemporaryDirectory() + "/duplex-pg-XXXXXX"), let made = mkdtemp(template) else {
            throw TestFailure("cannot make a temporary folder for PostgreSQL")
        }
        let directory = String(cString: made)
        free(template)
        if getuid() == 0 {
            guard let user = getpwnam("postgres") else {
                throw TestFailure("running as root, and there is no postgres user to run PostgreSQL as (apt-get install postgresql makes it)")
            }
            guard chown(directory, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw TestFailure("cannot give \(directory) to the postgres user")
            }
        }
        let server = PostgresServer(directory: directory, port: try await freePort(), binaries: binaries)
        try await server.run("initdb", ["-D", server.dataDirectory, "-A", "trust", "-U", "duplex", "-E", "UTF8", "--no-sync"])
        try await server.start()
        return server
    }

    private init(directory: String, port: Int, binaries: String) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
    }

    /// Starts (or starts again) the server on the same folder and port, waiting until it accepts connections.
    func start(timeout: Duration = .seconds(30)) async throws {
        let process = Self.process(binaries + "/postgres", ["-D", dataDirectory, "-p", "\(port)", "-k", directory,
                                                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        guard FileManager.default.createFile(atPath: directory + "/log", contents: nil),
              let log = FileHandle(forWritingAtPath: directory + "/log") else { throw TestFailure("cannot write \(directory)/log") }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        postmaster.withLock { $0 = process }
        let deadline = ContinuousClock.now + timeout
        while (try? await run("pg_isready", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "duplex", "-d", "postgres"])) == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let text = (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? ""
                throw TestFailure("PostgreSQL did not start within \(timeout): \(text.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the server at once ("fast" shutdown: every connection is closed) and waits until it has.
    func stop(timeout: Duration = .seconds(30)) async throws {
        guard let process = postmaster.withLock({ $0 }) else { return }
        kill(process.processIdentifier, SIGINT)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw TestFailure("PostgreSQL did not stop within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        postmaster.withLock { $0 = nil }
    }

    /// Runs SQL through psql and returns what it printed.
    @discardableResult
    func sql(_ statement: String) async throws -> String {
        try await run("psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "duplex", "-d", "postgres", "-At", "-c", statement])
    }

    /// Stops the server if it runs (immediate shutdown) and removes its folder once it has exited
    /// (waiting at most 5 seconds, on a thread of its own, so that `defer` does not block).
    func destroy() {
        let process = postmaster.withLock { $0 }
        if let process { kill(process.processIdentifier, SIGQUIT) }
        let directory = self.directory
        Thread.detachNewThread {
            let deadline = ContinuousClock.now + .seconds(5)
            while process?.isRunning == true, ContinuousClock.now < deadline { usleep(10_000) }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// A process that runs `executable` as the postgres user when this one is root.
    private static func process(_ executable: String, _ arguments: [String]) -> Process {
        let process = Process()
        if getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        return process
    }

    /// Runs one of PostgreSQL's programs to its end and returns what it printed (kept in a file),
    /// waiting without holding a thread.
    @discardableResult
    private func run(_ command: String, _ arguments: [String]) async throws -> String {
        let process = Self.process(binaries + "/" + command, arguments)
        let outputPath = directory + "/\(command)-\(UUID().uuidString).out"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil), let output = FileHandle(forWritingAtPath: outputPath) else {
            throw TestFailure("cannot write \(outputPath)")
        }
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        try? output.close()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? ""
            throw TestFailure("PostgreSQL's \(command) failed (\(status)): \(text)\n\(log.suffix(2000))")
        }
        return text
    }

    /// The folder with initdb and pg_ctl: DUPLEX_POSTGRES_BIN, else the newest /usr/lib/postgresql/*/bin.
    private static func findBinaries() throws -> String {
        if let given = ProcessInfo.processInfo.environment["DUPLEX_POSTGRES_BIN"] { return given }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) })
        where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        throw TestFailure("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-test-deps.sh, or set DUPLEX_POSTGRES_BIN")
    }

    /// A TCP port nobody listens on now.
    private static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}
