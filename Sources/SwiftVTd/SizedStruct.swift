// The C ABI's one versioning rule (swiftvtd.h): a struct starts with its size; the library
// takes an older, smaller one (missing fields keep their defaults) and a newer, larger one
// whose extra bytes are zero. Below the major's first release it is not this ABI at all.

enum SizedStruct {
    /// Sizes of the structs in 1.0, the first release of ABI major 1.
    static let configMinimum = 40
    static let hostOpsMinimum = 64
    static let priRequestMinimum = 24
    static let hostDeviceMinimum = 40

    /// Overlays the caller's `size` bytes of `source` on `value` (which holds the defaults).
    /// Returns nil, or why the struct cannot be read.
    static func read<T>(_ source: UnsafeRawPointer, into value: inout T, minimum: Int, name: String) -> String? {
        let size = Int(source.load(as: UInt32.self))
        let known = MemoryLayout<T>.size
        guard size >= minimum else {
            return "\(name) size \(size), this library takes \(minimum) to \(known) (or larger with the extra bytes zero)"
        }
        if size > known {
            let extra = UnsafeRawBufferPointer(start: source + known, count: size - known)
            guard extra.allSatisfy({ $0 == 0 }) else {
                return "\(name) size \(size) with fields this library (\(known) bytes) does not know set"
            }
        }
        withUnsafeMutableBytes(of: &value) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: source, count: min(size, known)))
        }
        // The copy carries the caller's size; ours describes the struct as read now.
        withUnsafeMutableBytes(of: &value) { $0.storeBytes(of: UInt32(known), as: UInt32.self) }
        return nil
    }
}
