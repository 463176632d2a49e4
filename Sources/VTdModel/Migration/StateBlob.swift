// The wire format of a SavedState: what swiftvtd_save_state writes and swiftvtd_load_state
// reads. Little-endian throughout.
//
//   offset  size  field
//        0     8  magic "SWVTDSTA"
//        8     4  format version (1)
//       12     4  length of the whole blob in bytes
//       16     4  CRC-32 of bytes 24..<length
//       20     4  reserved, 0
//       24     8  CAP                     } the saving unit's capabilities: a unit with
//       32     8  ECAP                    } others refuses the blob
//       40     4  register window size in bytes
//       44     4  flags: bit 0 = a root table is latched
//       48     8  latched root table address
//       56     4  latched root table mode (RTADDR.TTM)
//       60     4  next fault record
//       64     8  latched IRTA
//       72     …  register window, one 32-bit stored value per word
//
// A new field means a new version: a reader refuses versions it does not know rather than
// guess at them.

public enum StateBlobError: Error, Equatable, CustomStringConvertible, Sendable {
    case truncated(length: Int, needed: Int)
    case notAStateBlob
    case unsupportedVersion(UInt32)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case configurationMismatch(savedCapability: UInt64, savedExtended: UInt64, capability: UInt64, extended: UInt64)
    case invalidField(String)

    public var description: String {
        switch self {
        case let .truncated(length, needed):
            return "state blob truncated: \(length) bytes, \(needed) needed"
        case .notAStateBlob:
            return "not a SwiftVTd state blob (bad magic)"
        case .unsupportedVersion(let v):
            return "state blob format version \(v), this library reads version \(StateBlob.version)"
        case let .checksumMismatch(stored, computed):
            return "state blob corrupted: checksum 0x\(hex(stored)), contents give 0x\(hex(computed))"
        case let .configurationMismatch(savedCapability, savedExtended, capability, extended):
            return "state blob is from a unit with another configuration: CAP 0x\(hex(savedCapability)) ECAP 0x\(hex(savedExtended)), this unit has CAP 0x\(hex(capability)) ECAP 0x\(hex(extended))"
        case .invalidField(let what):
            return "state blob invalid: \(what)"
        }
    }
}

private func hex<T: BinaryInteger>(_ v: T) -> String { String(v, radix: 16) }

public enum StateBlob {
    public static let version: UInt32 = 1
    static let magic: [UInt8] = Array("SWVTDSTA".utf8)
    static let headerSize = 24
    static let fixedSize = 72

    static func encode(_ s: SavedState) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(fixedSize + s.registerWords.count * 4)
        out += magic
        out.append(le: version)
        out.append(le: UInt32(fixedSize + s.registerWords.count * 4))
        out.append(le: UInt32(0))  // checksum, filled in below
        out.append(le: UInt32(0))
        out.append(le: s.capability)
        out.append(le: s.extendedCapability)
        out.append(le: UInt32(s.registerWords.count * 4))
        out.append(le: UInt32(s.latchedRootTable == nil ? 0 : 1))
        out.append(le: s.latchedRootTable?.address ?? 0)
        out.append(le: UInt32(s.latchedRootTable?.mode.rawValue ?? 0))
        out.append(le: UInt32(s.nextFaultRecord))
        out.append(le: s.latchedInterruptRemappingTable)
        for word in s.registerWords { out.append(le: word) }
        let crc = out.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
        out.replaceSubrange(16..<20, with: withUnsafeBytes(of: crc.littleEndian, Array.init))
        return out
    }

    static func decode(_ blob: UnsafeRawBufferPointer) throws(StateBlobError) -> SavedState {
        guard blob.count >= headerSize else { throw .truncated(length: blob.count, needed: headerSize) }
        guard blob.prefix(8).elementsEqual(magic) else { throw .notAStateBlob }
        let v = blob.le(UInt32.self, at: 8)
        guard v == version else { throw .unsupportedVersion(v) }
        let length = Int(blob.le(UInt32.self, at: 12))
        guard blob.count >= length, length >= fixedSize else {
            throw .truncated(length: blob.count, needed: max(length, fixedSize))
        }
        guard blob.count == length else { throw .invalidField("\(blob.count) bytes given for a blob of \(length)") }
        let body = UnsafeRawBufferPointer(rebasing: blob[headerSize..<length])
        let stored = blob.le(UInt32.self, at: 16), computed = CRC32.checksum(body)
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
        guard blob.le(UInt32.self, at: 20) == 0 else { throw .invalidField("reserved header word is not 0") }

        let windowSize = Int(blob.le(UInt32.self, at: 40))
        guard windowSize % 4 == 0, windowSize == length - fixedSize else {
            throw .invalidField("register window of \(windowSize) bytes in a blob of \(length)")
        }
        let flags = blob.le(UInt32.self, at: 44)
        guard flags & ~1 == 0 else { throw .invalidField("unknown flags 0x\(hex(flags))") }
        let rawMode = blob.le(UInt32.self, at: 56)
        guard rawMode <= 3, let mode = TranslationTableMode(rawValue: UInt8(rawMode)) else {
            throw .invalidField("root table mode \(rawMode)")
        }
        let rootAddress = blob.le(UInt64.self, at: 48)
        guard flags & 1 != 0 || (rootAddress == 0 && rawMode == 0) else {
            throw .invalidField("a root table address without a latched root table")
        }
        let root = flags & 1 != 0 ? RootTablePointer(address: rootAddress, mode: mode) : nil
        let words = (0..<windowSize / 4).map { blob.le(UInt32.self, at: fixedSize + 4 * $0) }
        return SavedState(capability: blob.le(UInt64.self, at: 24), extendedCapability: blob.le(UInt64.self, at: 32),
                          registerWords: words, latchedRootTable: root,
                          latchedInterruptRemappingTable: blob.le(UInt64.self, at: 64),
                          nextFaultRecord: Int(blob.le(UInt32.self, at: 60)))
    }
}

private extension Array where Element == UInt8 {
    mutating func append<T: FixedWidthInteger>(le value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

private extension UnsafeRawBufferPointer {
    /// The little-endian integer at `offset` (the caller checked the bound).
    func le<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
