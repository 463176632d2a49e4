// The register window as 32-bit words, each with three masks and one generic write rule:
//   new = ((old & ~writable) | (value & writable)) & ~(writeOneToClear & value)
// Reads return the stored value except write-only bits, which read as 0.
// Side effects (GCMD, IQT, ...) are decided by the unit after the generic write.
//
// MMIO-hot: no allocation after init; an access touches one or two words. Every register is
// 4 or 8 bytes at a 4-byte-aligned offset, and accesses are naturally aligned, so a word is
// never split.

public struct RegisterFile: Sendable {
    struct Word {
        var value: UInt32 = 0
        var writable: UInt32 = 0
        var writeOneToClear: UInt32 = 0
        var writeOnly: UInt32 = 0
        var reset: UInt32 = 0

        @inline(__always)
        mutating func write(_ v: UInt32) {
            value = ((value & ~writable) | (v & writable)) & ~(writeOneToClear & v)
        }
        @inline(__always)
        var guestValue: UInt32 { value & ~writeOnly }
    }

    public let size: Int
    private var words: [Word]

    public init(size: Int) {
        precondition(size > 0 && size % 4 == 0)
        self.size = size
        words = [Word](repeating: Word(), count: size / 4)
    }

    /// Declares a register: reset value and masks, `width` 4 or 8 bytes.
    public mutating func define(_ offset: Int, width: Int, reset: UInt64 = 0, writable w: UInt64 = 0,
                                writeOneToClear c: UInt64 = 0, writeOnly o: UInt64 = 0) {
        precondition(offset >= 0 && offset % 4 == 0 && offset + width <= size && (width == 4 || width == 8))
        for half in 0..<(width / 4) {
            let shift = UInt64(32 * half)
            let r = UInt32(truncatingIfNeeded: reset >> shift)
            words[offset / 4 + half] = Word(value: r, writable: UInt32(truncatingIfNeeded: w >> shift),
                                            writeOneToClear: UInt32(truncatingIfNeeded: c >> shift),
                                            writeOnly: UInt32(truncatingIfNeeded: o >> shift), reset: r)
        }
    }

    public mutating func reset() {
        for i in words.indices { words[i].value = words[i].reset }
    }

    /// Whether an access of `width` bytes at `offset` is one the window accepts.
    @inline(__always)
    public func accepts(_ offset: Int, width: Int) -> Bool {
        (width == 4 || width == 8) && offset >= 0 && offset <= size - width && offset & (width - 1) == 0
    }

    /// Guest read: write-only bits read as 0. The caller checked `accepts`.
    @inline(__always)
    public func read(_ offset: Int, width: Int) -> UInt64 {
        let i = offset >> 2
        let low = UInt64(words[i].guestValue)
        return width == 4 ? low : low | UInt64(words[i + 1].guestValue) << 32
    }

    /// Guest write through the masks. The caller checked `accepts`.
    @inline(__always)
    public mutating func write(_ offset: Int, _ newValue: UInt64, width: Int) {
        let i = offset >> 2
        words[i].write(UInt32(truncatingIfNeeded: newValue))
        if width == 8 { words[i + 1].write(UInt32(truncatingIfNeeded: newValue >> 32)) }
    }

    // Raw access for the model itself (status bits, latched values): no masks.
    @inline(__always)
    public func get32(_ offset: Int) -> UInt32 { words[offset >> 2].value }
    @inline(__always)
    public func get64(_ offset: Int) -> UInt64 {
        UInt64(words[offset >> 2].value) | UInt64(words[(offset >> 2) + 1].value) << 32
    }
    @inline(__always)
    public mutating func set32(_ offset: Int, _ v: UInt32) { words[offset >> 2].value = v }
    @inline(__always)
    public mutating func set64(_ offset: Int, _ v: UInt64) {
        words[offset >> 2].value = UInt32(truncatingIfNeeded: v)
        words[(offset >> 2) + 1].value = UInt32(truncatingIfNeeded: v >> 32)
    }

    /// Every word's stored value, write-only bits included: the register image migration carries.
    public var rawWords: [UInt32] { words.map(\.value) }

    /// Puts back a register image taken with `rawWords` (same window size); masks stay.
    public mutating func restore(rawWords: [UInt32]) {
        precondition(rawWords.count == words.count)
        for i in words.indices { words[i].value = rawWords[i] }
    }

    /// The whole window as the guest would read it byte by byte (reset-idempotency checks).
    public var guestImage: [UInt8] {
        words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word.guestValue >> UInt32(8 * $0)) } }
    }
}
