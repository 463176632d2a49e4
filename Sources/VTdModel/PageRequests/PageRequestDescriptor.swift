// Page request descriptor (VT-d spec 7.5, "page request descriptor"): what the unit writes into
// the page request queue for each PCIe page request it accepts. 256 bits; the upper 128 held
// private data in earlier revisions of the spec and are written as zero.
//   qw0: type 7:0 (01h), PASID present 8, requester id 31:16, PASID 51:32, execute 52, privileged 53
//   qw1: read 0, write 1, last page in group 2, page request group index 11:3, page address 63:12

/// A PCIe page request (PRI) as a device sends it.
public struct PageRequest: Equatable, Sendable {
    public var sourceID: RequesterID
    /// nil: the request carried no PASID TLP prefix.
    public var pasid: PASID?
    /// Untranslated address of the page (bits 11:0 ignored).
    public var address: UInt64
    public var read: Bool
    public var write: Bool
    public var execute: Bool
    public var privileged: Bool
    /// LPIG: the last request of its page request group; the device waits for a group response.
    public var lastInGroup: Bool
    /// Page request group index, 9 bits.
    public var groupIndex: UInt16

    public init(sourceID: RequesterID, pasid: PASID? = nil, address: UInt64, read: Bool = true, write: Bool = false,
                execute: Bool = false, privileged: Bool = false, lastInGroup: Bool = true, groupIndex: UInt16 = 0) {
        self.sourceID = sourceID
        self.pasid = pasid
        self.address = address
        self.read = read
        self.write = write
        self.execute = execute
        self.privileged = privileged
        self.lastInGroup = lastInGroup
        self.groupIndex = groupIndex
    }

    /// A PCIe stop marker (last in group, neither read nor write) ends a PASID's requests and
    /// expects no response.
    public var isStopMarker: Bool { lastInGroup && !read && !write }
    /// Whether the device waits for a page group response to this request.
    public var needsResponse: Bool { lastInGroup && !isStopMarker }

    /// What is wrong with the request as a device sent it, if anything.
    public var malformation: String? {
        if groupIndex > 0x1FF { return "page request group index \(groupIndex) exceeds 9 bits" }
        if let pasid, pasid.rawValue > PASID.maximum { return "PASID 0x\(String(pasid.rawValue, radix: 16)) exceeds 20 bits" }
        if pasid == nil && (execute || privileged) { return "execute/privileged page request without a PASID" }
        return nil
    }
}

public struct PageRequestDescriptor: Equatable, Sendable {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public static let type: UInt64 = 0x01
    /// Bytes per descriptor in the queue.
    public static let size: UInt64 = 32

    public init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    public init(_ request: PageRequest) {
        var qw0 = Self.type | UInt64(request.sourceID.rawValue) << 16
        if let pasid = request.pasid { qw0 |= 1 << 8 | UInt64(pasid.rawValue & PASID.maximum) << 32 }
        if request.execute { qw0 |= 1 << 52 }
        if request.privileged { qw0 |= 1 << 53 }
        var qw1 = request.address & ~0xFFF | UInt64(request.groupIndex & 0x1FF) << 3
        if request.read { qw1 |= 1 << 0 }
        if request.write { qw1 |= 1 << 1 }
        if request.lastInGroup { qw1 |= 1 << 2 }
        words = (qw0, qw1, 0, 0)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public var descriptorType: UInt8 { UInt8(truncatingIfNeeded: words.0) }
    public var pasidPresent: Bool { words.0 & (1 << 8) != 0 }
    public var requesterID: RequesterID { RequesterID(rawValue: UInt16(truncatingIfNeeded: words.0 >> 16)) }
    public var pasid: PASID { PASID(rawValue: UInt32(truncatingIfNeeded: words.0.bits(51, 32))) }
    public var execute: Bool { words.0 & (1 << 52) != 0 }
    public var privileged: Bool { words.0 & (1 << 53) != 0 }
    public var read: Bool { words.1 & 1 != 0 }
    public var write: Bool { words.1 & 2 != 0 }
    public var lastInGroup: Bool { words.1 & 4 != 0 }
    public var groupIndex: UInt16 { UInt16(truncatingIfNeeded: words.1 >> 3) & 0x1FF }
    public var address: UInt64 { words.1 & ~0xFFF }
}
