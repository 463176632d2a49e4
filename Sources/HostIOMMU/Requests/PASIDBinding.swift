/// What the guest programmed into one scalable-mode PASID entry, reduced to what the host needs.
/// The model builds one of these whenever a PASID-cache invalidation (or a context change) makes it
/// re-read an entry of an assigned device.
public struct PASIDBinding: Hashable, Sendable, CustomStringConvertible {
    public var requesterID: RequesterID
    public var pasid: PASID
    /// The context entry's RID_PASID: requests without PASID use this entry, and the host attaches it
    /// without the PASID flag.
    public var ridPASID: PASID
    public var domainID: DomainID
    public var translation: Translation

    public init(
        requesterID: RequesterID, pasid: PASID = .zero, ridPASID: PASID = .zero, domainID: DomainID,
        translation: Translation
    ) {
        self.requesterID = requesterID
        self.pasid = pasid
        self.ridPASID = ridPASID
        self.domainID = domainID
        self.translation = translation
    }

    /// The PASID entry's PGTT, plus "cleared" for a non-present entry.
    public enum Translation: Hashable, Sendable {
        case firstLevel(FirstLevelTable)
        case passThrough
        case secondLevel
        case cleared
    }

    /// Where on the host device this entry lands.
    public var attachPoint: AttachPoint {
        pasid == ridPASID ? .requestsWithoutPASID : .pasid(pasid)
    }

    public var description: String {
        let what: String =
            switch translation {
            case .firstLevel(let table): "first-level \(table)"
            case .passThrough: "pass-through"
            case .secondLevel: "second-level"
            case .cleared: "cleared"
            }
        return "\(requesterID) \(pasid) \(domainID): \(what)"
    }
}

/// The host side of a PASID entry: the device's RID (requests without PASID, through RID_PASID), or
/// one PASID attached with VFIO_DEVICE_ATTACH_PASID.
public enum AttachPoint: Hashable, Sendable, CustomStringConvertible {
    case requestsWithoutPASID
    case pasid(PASID)

    public var description: String {
        switch self {
        case .requestsWithoutPASID: "RID"
        case .pasid(let pasid): "\(pasid)"
        }
    }
}

/// A guest first-stage page table as the PASID entry describes it (FSPTPTR, FSPM, SRE/WPE/EAFE).
public struct FirstLevelTable: Hashable, Sendable, CustomStringConvertible {
    /// Guest-physical address of the root table (4 KiB aligned).
    public var rootPointer: UInt64
    public var addressWidth: AddressWidth
    public var flags: FirstLevelFlags

    public init(rootPointer: UInt64, addressWidth: AddressWidth = .bits48, flags: FirstLevelFlags = []) {
        self.rootPointer = rootPointer
        self.addressWidth = addressWidth
        self.flags = flags
    }

    public var description: String {
        "root 0x\(String(rootPointer, radix: 16)) \(addressWidth.rawValue)-bit\(flags.isEmpty ? "" : " \(flags)")"
    }
}

/// First-stage paging mode: FSPM 0 is 4-level (48-bit), 1 is 5-level (57-bit).
public enum AddressWidth: UInt32, Hashable, Sendable {
    case bits48 = 48
    case bits57 = 57
}

/// PASID-entry bits the host must copy into `iommu_hwpt_vtd_s1.flags`; raw values are the uAPI's.
public struct FirstLevelFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Supervisor requests enabled (needs host ECAP.SRS).
    public static let supervisorRequests = FirstLevelFlags(rawValue: 1 << 0)
    /// Extended-accessed flag enabled (needs host ECAP.EAFS).
    public static let extendedAccessed = FirstLevelFlags(rawValue: 1 << 1)
    /// Write protect enable for supervisor requests.
    public static let writeProtect = FirstLevelFlags(rawValue: 1 << 2)

    public var description: String {
        var names: [String] = []
        if contains(.supervisorRequests) { names.append("SRE") }
        if contains(.extendedAccessed) { names.append("EAFE") }
        if contains(.writeProtect) { names.append("WPE") }
        return names.joined(separator: "|")
    }
}
