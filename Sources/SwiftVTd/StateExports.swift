// swiftvtd_save_state / swiftvtd_load_state (migration) and swiftvtd_dump_state (the text dump):
// the C faces of VTdUnit.saveState, loadState and dumpState. Control calls, not hot.

import CSwiftVTd
import VTdModel

/// Copies `bytes` to a caller's buffer of `length` bytes, or says how many it needs.
private func copyOut(_ bytes: [UInt8], to buffer: UnsafeMutableRawPointer?, length: Int,
                     needed: UnsafeMutablePointer<Int>?) -> Int32 {
    needed?.pointee = bytes.count
    guard let buffer, length >= bytes.count else { return SWIFTVTD_ENOSPC.rawValue }
    bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return SWIFTVTD_OK.rawValue
}

@_cdecl("swiftvtd_save_state")
public func swiftvtd_save_state(_ unit: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ length: Int,
                                _ needed: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    return copyOut(withHandle(unit) { $0.unit.saveState() }, to: buffer, length: length, needed: needed)
}

@_cdecl("swiftvtd_load_state")
public func swiftvtd_load_state(_ unit: OpaquePointer?, _ buffer: UnsafeRawPointer?, _ length: Int,
                                _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> Int32 {
    guard let unit, let buffer else {
        writeMessage("swiftvtd_load_state: unit or buffer is NULL", to: err, length: errLength)
        return SWIFTVTD_EINVAL.rawValue
    }
    // A size_t beyond Int.max arrives negative; no blob is that long.
    guard length >= 0 else {
        writeMessage("swiftvtd_load_state: length \(UInt(bitPattern: length)) is not a blob's", to: err, length: errLength)
        return SWIFTVTD_EINVAL.rawValue
    }
    let vtd = withHandle(unit) { $0.unit }
    do throws(StateBlobError) {
        try vtd.loadState(UnsafeRawBufferPointer(start: buffer, count: length))
        writeMessage("", to: err, length: errLength)
        return SWIFTVTD_OK.rawValue
    } catch {
        writeMessage("swiftvtd_load_state: \(error.description)", to: err, length: errLength)
        if case .unsupportedVersion = error { return SWIFTVTD_EVERSION.rawValue }
        return SWIFTVTD_EINVAL.rawValue
    }
}

@_cdecl("swiftvtd_dump_state")
public func swiftvtd_dump_state(_ unit: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ length: Int,
                                _ needed: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let unit else { return SWIFTVTD_EINVAL.rawValue }
    let (vtd, host) = withHandle(unit) { ($0.unit, $0.hostDevices) }
    // Units with host devices (or a decision about them) say how those are translated.
    let text = vtd.dumpState() + host.describe()
    let result = copyOut(Array(text.utf8) + [0], to: buffer, length: length, needed: needed)
    // Too small: as much as fits, still a C string (a fixed-size monitor buffer shows the start).
    if result == SWIFTVTD_ENOSPC.rawValue { writeMessage(text, to: buffer, length: length) }
    return result
}
