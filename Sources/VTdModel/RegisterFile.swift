// The register window as 32-bit words, each with three masks and one generic write rule:
//   new = ((old & ~writable) | (value & writable)) & ~(writeOneToClear & value)
// Reads return the stored value except write-only bits, which read as 0.
// Side effects (GCMD, IQT, ...) are decided by the unit after the generic write.
//
// MMIO-hot: no allocation after init; an access touches one or two words. Every register is
// 4 or 8 bytes at a 4-byte-aligned offset, and accesses are naturally aligned, so a word is
// never split. The values are one dense array and the masks another: the model's own reads and
// writes (status bits, IQH, latched values) touch only values, 16 to a cache line, so a queue
// run finds its registers in one or two lines instead of one per register.
//
// A file covers [base, base + size) of the window: each sub-state of the unit owns the file of
// the registers it is responsible for, and every offset here is a window offset.

public struct RegisterFile: Sendable {
    struct Masks {
        var writable: UInt32 = 0
        var writeOneToClear: UInt32 = 0
        var writeOnly: UInt32 = 0
        var reset: UInt32 = 0

        @inline(__always)
        func written(_ old: UInt32, _ v: UInt32) -> UInt32 {
            ((old & ~writable) | (v & writable)) & ~(writeOneToClear & v)
        }
        /// What the guest reads of a stored value: write-only bits read as 0.
        @inline(__always)
        func guestValue(_ stored: UInt32) -> UInt32 { stored & ~writeOnly }
    }

    /// Window offset of the first byte this file holds.
    public let base: Int
    public let size: Int
    private var values: [UInt32]
    private var masks: [Masks]

    public init(base: Int = 0, size: Int) {
        precondition(base >= 0 && base % 8 == 0 && size > 0 && size % 4 == 0)
        self.base = base
        self.size = size
        values = [UInt32](repeating: 0, count: size / 4)
        masks = [Masks](repeating: Masks(), count: size / 4)
    }

    /// The window offsets this file holds.
    public var offsets: Range<Int> { base..<(base + size) }
    /// The 32-bit words of the window this file holds (its part of a whole-window image).
    public var wordRange: Range<Int> { (base / 4)..<((base + size) / 4) }

    @inline(__always)
    private func index(_ offset: Int) -> Int { (offset - base) >> 2 }

    /// Declares a register: reset value and masks, `width` 4 or 8 bytes.
    public mutating func define(_ offset: Int, width: Int, reset: UInt64 = 0, writable w: UInt64 = 0,
                                writeOneToClear c: UInt64 = 0, writeOnly o: UInt64 = 0) {
        precondition(offset >= base && offset % 4 == 0 && offset + width <= base + size && (width == 4 || width == 8))
        for half in 0..<(width / 4) {
            let shift = UInt64(32 * half)
            let r = UInt32(truncatingIfNeeded: reset >> shift)
            values[index(offset) + half] = r
            masks[index(offset) + half] = Masks(writable: UInt32(truncatingIfNeeded: w >> shift),
                                                writeOneToClear: UInt32(truncatingIfNeeded: c >> shift),
                                                writeOnly: UInt32(truncatingIfNeeded: o >> shift), reset: r)
        }
    }

    public mutating func reset() {
        for i in values.indices { values[i] = masks[i].reset }
    }

    /// Whether an access of `width` bytes at `offset` is one the window accepts.
    @inline(__always)
    public func accepts(_ offset: Int, width: Int) -> Bool {
        (width == 4 || width == 8) && offset >= base && offset <= base + size - width && offset & (width - 1) == 0
    }

    /// Guest read: write-only bits read as 0. The caller checked `accepts`.
    @inline(__always)
    public func read(_ offset: Int, width: Int) -> UInt64 {
        let i = index(offset)
        let low = UInt64(masks[i].guestValue(values[i]))
        return width == 4 ? low : low | UInt64(masks[i + 1].guestValue(values[i + 1])) << 32
    }

    /// Guest write through the masks. The caller checked `accepts`.
    @inline(__always)
    public mutating func write(_ offset: Int, _ newValue: UInt64, width: Int) {
        let i = index(offset)
        values[i] = masks[i].written(values[i], UInt32(truncatingIfNeeded: newValue))
        if width == 8 { values[i + 1] = masks[i + 1].written(values[i + 1], UInt32(truncatingIfNeeded: newValue >> 32)) }
    }

    // Raw access for the model itself (status bits, latched values): no masks.
    @inline(__always)
    public func get32(_ offset: Int) -> UInt32 { values[index(offset)] }
    @inline(__always)
    public func get64(_ offset: Int) -> UInt64 {
        UInt64(values[index(offset)]) | UInt64(values[index(offset) + 1]) << 32
    }
    @inline(__always)
    public mutating func set32(_ offset: Int, _ v: UInt32) { values[index(offset)] = v }
    @inline(__always)
    public mutating func set64(_ offset: Int, _ v: UInt64) {
        let i = index(offset)
        values[i] = UInt32(truncatingIfNeeded: v)
        values[i + 1] = UInt32(truncatingIfNeeded: v >> 32)
    }

    /// Every word's stored value, write-only bits included: the register image migration carries.
    public var rawWords: [UInt32] { values }

    /// Puts back a register image taken with `rawWords` (same size); masks stay.
    public mutating func restore(rawWords: some Collection<UInt32>) {
        precondition(rawWords.count == values.count)
        for (i, value) in zip(values.indices, rawWords) { values[i] = value }
    }

    /// The whole window as the guest would read it byte by byte (reset-idempotency checks).
    public var guestImage: [UInt8] {
        zip(values, masks).flatMap { value, mask in
            (0..<4).map { UInt8(truncatingIfNeeded: mask.guestValue(value) >> UInt32(8 * $0)) }
        }
    }
}
