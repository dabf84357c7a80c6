/// Stops the run when an invariant does not hold: libFuzzer sees the trap and saves the input.
///
/// Unlike `precondition`, this also checks in optimised builds with `-Ounchecked`, and says which
/// invariant broke.
@inline(never)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        fatalError("invariant broken: \(message())", file: file, line: line)
    }
}

/// Whether `bytes` are valid UTF-8, decided by the standard library rather than Duplex's own validator.
public func isValidUTF8(_ bytes: some Collection<UInt8>) -> Bool {
    String(validating: bytes, as: UTF8.self) != nil
}
