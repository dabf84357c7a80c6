/// An ordered list of HTTP header fields, as `(name, value)` pairs.
///
/// Order and duplicates are kept exactly as added or received. Every lookup by name is
/// ASCII case-insensitive, as field names are in HTTP. Two values are equal when they hold the
/// same fields in the same order, names compared case-insensitively and values exactly.
///
/// ```swift
/// var fields: HTTPFields = ["Host": "example.com"]
/// fields.add("Connection", "keep-alive, Upgrade")
/// fields.containsToken("connection", "upgrade") // true
/// ```
public struct HTTPFields: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// One field: its name as written, and its value.
    public typealias Element = (name: String, value: String)

    fileprivate struct Field: Sendable {
        var name: String
        var value: String
    }

    private var fields: [Field]

    /// Creates an empty list of fields.
    public init() {
        fields = []
    }

    /// Creates an empty list with room for `minimumCapacity` fields.
    init(minimumCapacity: Int) {
        fields = []
        fields.reserveCapacity(minimumCapacity)
    }

    /// Creates a list holding `fields` in order.
    public init(_ fields: [(name: String, value: String)]) {
        self.fields = fields.map { Field(name: $0.name, value: $0.value) }
    }

    /// Creates a list from a literal, keeping the literal's order.
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { Field(name: $0.0, value: $0.1) }
    }

    /// The number of fields, counting repeated names separately.
    public var count: Int { fields.count }

    /// Whether there are no fields.
    public var isEmpty: Bool { fields.isEmpty }

    /// The value of the first field named `name` (case-insensitive), or nil when there is none.
    ///
    /// Setting a value replaces the first such field's value and removes any later ones (or appends a
    /// new field when there is none), as ``replaceOrAdd(_:_:)`` does; setting nil removes every
    /// field named `name`.
    public subscript(name: String) -> String? {
        get { fields.first { HTTPGrammar.equalsIgnoringASCIICase($0.name, name) }?.value }
        set {
            if let newValue { replaceOrAdd(name, newValue) } else { remove(name) }
        }
    }

    /// The values of every field named `name` (case-insensitive), in order. Empty when there is none.
    public func values(_ name: String) -> [String] {
        var values: [String] = []
        for field in fields where HTTPGrammar.equalsIgnoringASCIICase(field.name, name) { values.append(field.value) }
        return values
    }

    /// The value of the first field named `name` and the number of such fields, without building
    /// an array: for the fields a request must hold exactly once.
    func firstValue(_ name: String) -> (value: String?, count: Int) {
        var first: String?
        var count = 0
        for field in fields where HTTPGrammar.equalsIgnoringASCIICase(field.name, name) {
            if count == 0 { first = field.value }
            count += 1
        }
        return (first, count)
    }

    /// The elements of the comma-separated list held by every field named `name`, in order.
    ///
    /// Each value is split on ",", each element trimmed of spaces and tabs, and empty elements
    /// dropped, so `a, b` and a second field `c` give `["a", "b", "c"]`. Quoted strings are not
    /// interpreted.
    public func tokens(_ name: String) -> [String] {
        values(name).flatMap { value in
            value.split(separator: ",", omittingEmptySubsequences: false)
                .map { HTTPGrammar.trimmingOWS($0) }
                .filter { !$0.isEmpty }
                .map(String.init)
        }
    }

    /// Whether the comma-separated list held by the fields named `name` contains `token`,
    /// comparing ASCII case-insensitively (see ``tokens(_:)``).
    public func containsToken(_ name: String, _ token: String) -> Bool {
        var token = token
        return token.withUTF8 { token in
            fields.contains { field in
                guard HTTPGrammar.equalsIgnoringASCIICase(field.name, name) else { return false }
                var value = field.value
                return value.withUTF8 { HTTPGrammar.list($0, containsToken: token) }
            }
        }
    }

    /// Whether at least one field is named `name` (case-insensitive).
    public func contains(_ name: String) -> Bool {
        fields.contains { HTTPGrammar.equalsIgnoringASCIICase($0.name, name) }
    }

    /// Appends a field, keeping any existing fields of the same name.
    public mutating func add(_ name: String, _ value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Sets the value of the field named `name`: the first such field keeps its place and takes
    /// `value`, later ones are removed; when there is none, the field is appended.
    public mutating func replaceOrAdd(_ name: String, _ value: String) {
        guard let first = fields.firstIndex(where: { HTTPGrammar.equalsIgnoringASCIICase($0.name, name) }) else {
            return add(name, value)
        }
        fields[first].value = value
        var index = fields.index(after: first)
        while index < fields.endIndex {
            if HTTPGrammar.equalsIgnoringASCIICase(fields[index].name, name) {
                fields.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    /// Removes every field named `name` (case-insensitive). Does nothing when there is none.
    public mutating func remove(_ name: String) {
        fields.removeAll { HTTPGrammar.equalsIgnoringASCIICase($0.name, name) }
    }

    /// Iterates over the fields in order.
    public struct Iterator: IteratorProtocol {
        private var base: IndexingIterator<[Field]>

        fileprivate init(_ fields: [Field]) {
            base = fields.makeIterator()
        }

        /// The next field, or nil at the end.
        public mutating func next() -> (name: String, value: String)? {
            base.next().map { ($0.name, $0.value) }
        }
    }

    /// Returns an iterator over the fields in order.
    public func makeIterator() -> Iterator {
        Iterator(fields)
    }

    /// The fields as they would appear in a head, one `name: value` per line.
    public var description: String {
        fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    /// Whether both hold the same fields in the same order (names compared case-insensitively).
    public static func == (lhs: HTTPFields, rhs: HTTPFields) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy {
                $0.value == $1.value && HTTPGrammar.equalsIgnoringASCIICase($0.name, $1.name)
            }
    }

    /// Hashes the fields in order, with names lowercased.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(fields.count)
        for field in fields {
            hasher.combine(HTTPGrammar.asciiLowercased(field.name))
            hasher.combine(field.value)
        }
    }
}
