import DuplexCore
import NIOCore
import Testing

@Suite struct UTF8ValidatorTests {
    @Test(arguments: [
        "", "hello", "héllo wörld", "κόσμε", "✓", "😀", "\u{7F}", "\u{80}", "\u{7FF}", "\u{800}", "\u{FFFF}",
        "\u{10000}", "\u{10FFFF}", "\u{D7FF}", "\u{E000}", String(repeating: "a", count: 1000) + "é",
    ])
    func acceptsValidText(_ text: String) {
        #expect(UTF8Validator.isValid(Array(text.utf8)))
    }

    @Test(arguments: [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFE], [0xFF],
        [0xC2], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0x61, 0xC2, 0x61],
    ] as [[UInt8]])
    func rejectsInvalidText(_ bytes: [UInt8]) {
        #expect(!UTF8Validator.isValid(bytes))
    }

    @Test func codePointSplitAcrossPieces() {
        let bytes = Array("a😀b€c".utf8)
        for split in 0...bytes.count {
            var validator = UTF8Validator()
            let first = bytes[..<split].withUnsafeBytes { validator.validate($0) }
            let second = bytes[split...].withUnsafeBytes { validator.validate($0) }
            #expect(first && second && validator.isComplete)
        }
    }

    @Test func failsAtTheFirstBadByteNotAtTheEnd() {
        // Code points 0xF4 0x90 is above U+10FFFF: invalid as soon as the second byte arrives.
        var validator = UTF8Validator()
        #expect(([0xCE, 0xBA, 0xF4] as [UInt8]).withUnsafeBytes { validator.validate($0) })
        #expect(!validator.isComplete)
        #expect(!([0x90] as [UInt8]).withUnsafeBytes { validator.validate($0) })
        #expect(validator.hasFailed)
    }

    @Test func asciiFastPathBoundaries() {
        for position in 0..<40 {
            var bytes = [UInt8](repeating: 0x41, count: 40)
            bytes[position] = 0xFF
            #expect(!UTF8Validator.isValid(bytes))
        }
    }
}
