// Page group response descriptor (invalidation queue descriptor type 9, VT-d spec 6.5.2):
// software's answer to a page request group, which the unit forwards to the device.
//   qw0: type 3:0 (9), PASID present 4, response code 15:12, requester id 31:16, PASID 51:32
//   qw1: page request group index 11:3 (bit 2, "last page in group", is carried by some
//        drivers from earlier spec revisions and is ignored)

/// PCIe PRG response codes.
public enum PageGroupResponseCode: UInt8, Sendable {
    /// The pages are mapped: retry the translation.
    case success = 0x0
    /// The request cannot be satisfied: the device reports it and does not retry.
    case invalidRequest = 0x1
    /// Catastrophic failure: the device disables its page request interface.
    case responseFailure = 0xF
}

public struct PageGroupResponseDescriptor: Equatable, Sendable {
    public var low: UInt64
    public var high: UInt64
    public init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    public static let type: UInt64 = 0x9

    public var pasidPresent: Bool { low & (1 << 4) != 0 }
    /// Bits 15:12 as written; nil for the codes PCIe reserves.
    public var responseCode: PageGroupResponseCode? { PageGroupResponseCode(rawValue: UInt8((low >> 12) & 0xF)) }
    public var requesterID: RequesterID { RequesterID(rawValue: UInt16(truncatingIfNeeded: low >> 16)) }
    public var pasid: PASID { PASID(rawValue: UInt32(truncatingIfNeeded: low.bits(51, 32))) }
    public var groupIndex: UInt16 { UInt16(truncatingIfNeeded: high >> 3) & 0x1FF }

    public init(requesterID: RequesterID, pasid: PASID?, groupIndex: UInt16, code: PageGroupResponseCode) {
        var low = Self.type | UInt64(code.rawValue) << 12 | UInt64(requesterID.rawValue) << 16
        if let pasid { low |= 1 << 4 | UInt64(pasid.rawValue & PASID.maximum) << 32 }
        self.init(low: low, high: UInt64(groupIndex & 0x1FF) << 3)
    }
}
