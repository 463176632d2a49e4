// A DMA request and what the unit answers.

public struct TranslationRequest: Sendable {
    /// Requester id: bus << 8 | devfn.
    public var sourceID: RequesterID
    /// PASID of a request with a PASID TLP prefix; nil for requests without PASID.
    public var pasid: PASID?
    public var address: UInt64
    /// What the request does: read, write (both for QEMU's IOMMU_RW), execute.
    public var access: Permissions
    /// Supervisor request (PASID TLP with PMR set).
    public var privileged: Bool
    /// ATS translation request: answered, never recorded as a fault (the device reports it).
    public var isTranslationRequest: Bool
    /// Probe only (replay, dumps): never record a fault.
    public var recordsFaults: Bool

    public init(sourceID: RequesterID, pasid: PASID? = nil, address: UInt64, access: Permissions,
                privileged: Bool = false, isTranslationRequest: Bool = false, recordsFaults: Bool = true) {
        self.sourceID = sourceID
        self.pasid = pasid
        self.address = address
        self.access = access
        self.privileged = privileged
        self.isTranslationRequest = isTranslationRequest
        self.recordsFaults = recordsFaults
    }
}

public struct Translation: Equatable, Sendable {
    /// Output address for the request's address (page base + offset).
    public var translated: UInt64
    /// ~(page size - 1).
    public var pageMask: UInt64
    public var permissions: Permissions
    /// True when the device is untranslated (remapping off or pass-through).
    public var identity: Bool

    public init(translated: UInt64, pageMask: UInt64, permissions: Permissions, identity: Bool = false) {
        self.translated = translated
        self.pageMask = pageMask
        self.permissions = permissions
        self.identity = identity
    }
}

public enum TranslationOutcome: Equatable, Sendable {
    case translated(Translation)
    case fault(FaultReason)
}
