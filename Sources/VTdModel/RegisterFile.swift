// The register window as bytes plus four per-byte masks, one generic write rule:
//   new = ((old & ~writable) | (value & writable)) & ~(w1c & value)
// Reads return the stored value except write-only bytes, which read as 0.
// Side effects (GCMD, IQT, ...) are decided by the unit after the generic write.
// This is MMIO-hot: no allocation after init, bounds checked once per access.

public struct RegisterFile {
    public let size: Int
    private var value: [UInt8]
    private var writable: [UInt8]
    private var writeOneToClear: [UInt8]
    private var writeOnly: [UInt8]
    /// Reset image, so a reset is a copy.
    private var resetValue: [UInt8]

    public init(size: Int) {
        self.size = size
        value = [UInt8](repeating: 0, count: size)
        writable = value
        writeOneToClear = value
        writeOnly = value
        resetValue = value
    }

    /// Declares a register: reset value and masks, `width` 4 or 8 bytes.
    public mutating func define(_ offset: Int, width: Int, reset: UInt64 = 0, writable w: UInt64 = 0,
                                writeOneToClear c: UInt64 = 0, writeOnly o: UInt64 = 0) {
        precondition(offset >= 0 && offset + width <= size && (width == 4 || width == 8))
        for i in 0..<width {
            let shift = UInt64(8 * i)
            value[offset + i] = UInt8(truncatingIfNeeded: reset >> shift)
            resetValue[offset + i] = value[offset + i]
            writable[offset + i] = UInt8(truncatingIfNeeded: w >> shift)
            writeOneToClear[offset + i] = UInt8(truncatingIfNeeded: c >> shift)
            writeOnly[offset + i] = UInt8(truncatingIfNeeded: o >> shift)
        }
    }

    public mutating func reset() {
        value = resetValue
    }

    /// Whether an access of `width` bytes at `offset` is one the window accepts.
    @inline(__always)
    public func accepts(_ offset: Int, width: Int) -> Bool {
        (width == 4 || width == 8) && offset >= 0 && offset <= size - width && offset & (width - 1) == 0
    }

    /// Guest read: write-only bytes read as 0. The caller checked `accepts`.
    public func read(_ offset: Int, width: Int) -> UInt64 {
        var result: UInt64 = 0
        for i in 0..<width {
            result |= UInt64(value[offset + i] & ~writeOnly[offset + i]) << UInt64(8 * i)
        }
        return result
    }

    /// Guest write through the masks. The caller checked `accepts`.
    public mutating func write(_ offset: Int, _ newValue: UInt64, width: Int) {
        for i in 0..<width {
            let byte = UInt8(truncatingIfNeeded: newValue >> UInt64(8 * i))
            let old = value[offset + i]
            let w = writable[offset + i]
            value[offset + i] = ((old & ~w) | (byte & w)) & ~(writeOneToClear[offset + i] & byte)
        }
    }

    // Raw access for the model itself (status bits, latched values): no masks.
    public func get32(_ offset: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: raw(offset, width: 4))
    }
    public func get64(_ offset: Int) -> UInt64 { raw(offset, width: 8) }
    public mutating func set32(_ offset: Int, _ v: UInt32) { setRaw(offset, UInt64(v), width: 4) }
    public mutating func set64(_ offset: Int, _ v: UInt64) { setRaw(offset, v, width: 8) }

    private func raw(_ offset: Int, width: Int) -> UInt64 {
        var result: UInt64 = 0
        for i in 0..<width { result |= UInt64(value[offset + i]) << UInt64(8 * i) }
        return result
    }
    private mutating func setRaw(_ offset: Int, _ v: UInt64, width: Int) {
        for i in 0..<width { value[offset + i] = UInt8(truncatingIfNeeded: v >> UInt64(8 * i)) }
    }

    /// The whole window as the guest would read it byte by byte (reset-idempotency checks).
    public var guestImage: [UInt8] {
        (0..<size).map { value[$0] & ~writeOnly[$0] }
    }
}
