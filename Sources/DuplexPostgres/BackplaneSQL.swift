import Duplex
import DuplexPubSub
import PostgresNIO

/// The statements of the backplane, for one table (whose name also names the NOTIFY channel).
///
/// Every message is a row; the insert notifies the row's id in the same statement, so the
/// notification goes out when the row commits, and listeners read the row by id. Payloads of
/// any size arrive that way (NOTIFY alone stops at 8000 bytes), and the rows are the history a
/// listener catches up from after it was disconnected. `(origin, sequence)` is unique, so a
/// publisher that retries an insert whose answer it lost cannot make a duplicate.
struct BackplaneSQL: Sendable {
    let table: String

    /// - Throws: ``PostgresBackplaneError/invalidTable(_:)`` unless `table` is a plain identifier.
    init(table: String) throws {
        let letters = Set("abcdefghijklmnopqrstuvwxyz_")
        let digits = Set("0123456789")
        guard let first = table.first, letters.contains(first), table.count <= 63,
              table.allSatisfy({ letters.contains($0) || digits.contains($0) }) else {
            throw PostgresBackplaneError.invalidTable(table)
        }
        self.table = table
    }

    var createTable: PostgresQuery {
        """
        CREATE TABLE IF NOT EXISTS \(unescaped: table) (
            id bigserial PRIMARY KEY,
            origin text NOT NULL,
            sequence bigint NOT NULL,
            channel text NOT NULL,
            kind smallint NOT NULL,
            payload bytea NOT NULL,
            published_at bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (origin, sequence))
        """
    }

    func insert(origin: String, _ pending: PendingMessage) -> PostgresQuery {
        let kind: Int16 = pending.message.kind == .text ? 0 : 1
        return """
            WITH row AS (INSERT INTO \(unescaped: table) (origin, sequence, channel, kind, payload, published_at)
                VALUES (\(origin), \(pending.sequence), \(pending.channel), \(kind), \(pending.message.data), \(pending.publishedAt))
                ON CONFLICT (origin, sequence) DO NOTHING RETURNING id)
            SELECT pg_notify('\(unescaped: table)', id::text) FROM row
            """
    }

    func message(id: Int64) -> PostgresQuery {
        "SELECT id, channel, kind, payload, published_at FROM \(unescaped: table) WHERE id = \(id)"
    }

    /// The rows after `id`, oldest first.
    func messages(after id: Int64) -> PostgresQuery {
        "SELECT id, channel, kind, payload, published_at FROM \(unescaped: table) WHERE id > \(id) ORDER BY id"
    }

    var lastID: PostgresQuery {
        "SELECT coalesce(max(id), 0)::int8 FROM \(unescaped: table)"
    }

    func deleteOlder(thanSeconds seconds: Double) -> PostgresQuery {
        "DELETE FROM \(unescaped: table) WHERE created_at < now() - make_interval(secs => \(seconds))"
    }
}

/// A message waiting in this process to be written.
struct PendingMessage: Sendable {
    /// This process's count of published messages: with the origin, the row's unique key.
    let sequence: Int64
    let channel: String
    let message: WebSocketMessage
    /// When `publish` was called, in nanoseconds since 1970.
    let publishedAt: Int64
}
