import Foundation
public import PostgresNIO

extension PostgresBackplane {
    /// How a ``PostgresBackplane`` reaches PostgreSQL and how long it keeps messages.
    public struct Configuration: Sendable {
        /// The server, user and database (postgres-nio's configuration: host and port or a Unix socket, TLS).
        public var connection: PostgresConnection.Configuration
        /// The table that holds the messages; also the name of the NOTIFY channel. Created when
        /// missing. Lower-case letters, digits and `_`, starting with a letter. Default `duplex_backplane`.
        public var table: String
        /// How long a message stays in the table: what a process that was disconnected can still
        /// catch up on when it reconnects. Older rows are deleted. Default 60 seconds.
        public var retention: Duration
        /// Messages this process holds while PostgreSQL cannot be reached; beyond it `publish`
        /// drops the message and counts it (`duplex_backplane_dropped_total{reason="queue_full"}`).
        /// Default 10,000.
        public var maxQueuedMessages: Int
        /// The first wait before reconnecting; it doubles after every failed attempt. Default 100 ms.
        public var initialReconnectDelay: Duration
        /// The longest wait between reconnection attempts. Default 5 seconds.
        public var maxReconnectDelay: Duration

        /// - Parameter connection: Where PostgreSQL is; the other settings take their defaults.
        public init(connection: PostgresConnection.Configuration) {
            self.connection = connection
            table = "duplex_backplane"
            retention = .seconds(60)
            maxQueuedMessages = 10_000
            initialReconnectDelay = .milliseconds(100)
            maxReconnectDelay = .seconds(5)
        }

        /// A configuration from a URL: `postgres://user[:password]@host[:port]/database`, or
        /// `postgresql://…`; port 5432 by default; `?sslmode=require` for TLS (default: no TLS).
        ///
        /// - Throws: ``PostgresBackplaneError/invalidURL(_:_:)`` when the URL is not of that form.
        public init(url: String) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme,
                  scheme == "postgres" || scheme == "postgresql" else {
                throw PostgresBackplaneError.invalidURL(url, "expected postgres://user@host:port/database")
            }
            guard let host = components.host, !host.isEmpty else { throw PostgresBackplaneError.invalidURL(url, "no host") }
            guard let user = components.user, !user.isEmpty else { throw PostgresBackplaneError.invalidURL(url, "no user") }
            let database = components.path.split(separator: "/").first.map(String.init)
            let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
            let tls: PostgresConnection.Configuration.TLS
            switch sslMode {
            case "disable": tls = .disable
            case "require":
                do {
                    tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                } catch {
                    throw PostgresBackplaneError.invalidURL(url, "cannot set up TLS: \(error)")
                }
            default: throw PostgresBackplaneError.invalidURL(url, "sslmode must be disable or require, not \(sslMode)")
            }
            self.init(connection: .init(host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
                                        port: components.port ?? 5432, username: user,
                                        password: components.password, database: database, tls: tls))
        }
    }
}

/// Why a ``PostgresBackplane`` cannot be made.
public enum PostgresBackplaneError: Error, CustomStringConvertible, Sendable {
    /// The URL (first) is not a PostgreSQL URL; the reason (second) says what is wrong.
    case invalidURL(String, String)
    /// The table name is not a plain lower-case identifier.
    case invalidTable(String)
    /// The connection to PostgreSQL closed, or a statement got no answer in time (it reconnects).
    case connectionClosed

    /// A sentence for a person.
    public var description: String {
        switch self {
        case .invalidURL(let url, let reason): "invalid PostgreSQL URL \(url): \(reason)"
        case .invalidTable(let name): "invalid backplane table name \(name): use lower-case letters, digits and _, starting with a letter"
        case .connectionClosed: "the connection to PostgreSQL closed"
        }
    }
}
