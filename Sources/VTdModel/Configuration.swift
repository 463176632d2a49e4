// The unit's configuration: QEMU intel-iommu's properties (same names, same defaults)
// plus the library's own. Decided once at creation; capabilities derive from it.

public struct VTdConfiguration: Equatable, Sendable {
    // QEMU intel-iommu properties
    public var addressWidth: Int = 48          // aw-bits
    public var cachingMode = false             // caching-mode
    public var scalableMode = false            // scalable-mode (10.0: x-scalable-mode)
    public var firstLevel = false              // fsts (10.0: x-flts)
    public var pasid = false                   // pasid-bits > 0 (10.0: x-pasid-mode)
    public var interruptRemapping = true       // intremap (resolved by the host)
    public var extendedInterruptMode = false   // eim (resolved by the host)
    public var deviceIOTLB = false             // device-iotlb
    public var passThrough = true              // pt
    public var dmaDrain = true                 // dma-drain
    public var snoopControl = false            // snoop-control
    public var dmaTranslation = true           // dma-translation
    public var staleTM = false                 // stale-tm
    public var firstLevel1GPages = true        // fs1gp
    // The library's own
    public var secondLevelWithFirstLevel = false // slts: offer SLTS beside FLTS
    public var nesting = false                 // nesting: ECAP.NEST, nested PGTT
    public var pageRequests = false            // page-requests: ECAP.PRS|PDS
    public var firstLevel5Level = false        // fs5lp: five-level first-level tables
    public var pasidBits = 20                  // pasid-bits: PASID width when pasid is on
    public var faultRecords = 1                // fault-records: number of FRCD registers
    public var iotlbCapacity = 4096            // iotlb-size
    public var shadowMappingLimit = 1 << 20    // shadow-limit: mappings one shadowed address space may hold

    public init() {}

    /// The reasons this configuration cannot be built, in QEMU's words where QEMU has one.
    public func validationError() -> String? {
        if ![39, 48, 57].contains(addressWidth) {
            return "aw-bits must be 39, 48 or 57 (got \(addressWidth))"
        }
        if addressWidth == 57 && !firstLevel5Level && firstLevel {
            return "aw-bits=57 with fsts needs fs5lp=on"
        }
        if firstLevel && !scalableMode { return "fsts is only available in scalable mode" }
        if firstLevel && addressWidth < AddressRanges.firstLevelMinimumWidth {
            return "fsts needs aw-bits of at least \(AddressRanges.firstLevelMinimumWidth)"
        }
        if firstLevel5Level && !firstLevel { return "fs5lp needs fsts" }
        if secondLevelWithFirstLevel && !firstLevel { return "slts is only meaningful with fsts" }
        if pasid && !scalableMode { return "PASID support (pasid-bits) needs scalable-mode" }
        if scalableMode && !dmaDrain { return "scalable-mode needs dma-drain" }
        if extendedInterruptMode && !interruptRemapping { return "eim=on cannot be selected without intremap=on" }
        if nesting && !(scalableMode && firstLevel) { return "nesting needs scalable-mode and fsts" }
        if pageRequests && !(scalableMode && pasid) { return "page-requests (svm) needs scalable-mode and pasid-bits" }
        if !(1...20).contains(pasidBits) { return "pasid-bits must be 1..20 (got \(pasidBits))" }
        if !(1...256).contains(faultRecords) { return "fault-records must be 1..256 (got \(faultRecords))" }
        if !(16...(1 << 20)).contains(iotlbCapacity) { return "iotlb-size must be 16..1048576 (got \(iotlbCapacity))" }
        if !(1...(1 << 24)).contains(shadowMappingLimit) {
            return "shadow-limit must be 1..16777216 (got \(shadowMappingLimit))"
        }
        return nil
    }
}

/// Properties intel-iommu resolves at realize from what only the host knows, and the facts it
/// resolves them from. The host passes them unresolved; `resolve` applies QEMU's rules once.
public struct HostFacts: Equatable, Sendable {
    /// "eim=auto" (the configuration's `extendedInterruptMode` is then ignored).
    public var eimAuto = false
    /// KVM's interrupt controller is in the kernel (full or split): it delivers x2APIC destinations.
    public var kvmIrqchipInKernel = false
    /// "x-buggy-eim": eim=auto turns on without a KVM irqchip.
    public var buggyEIM = false
    /// "svm": shared virtual memory, i.e. page requests with intel-iommu's requirements.
    public var svm = false

    public init(eimAuto: Bool = false, kvmIrqchipInKernel: Bool = false, buggyEIM: Bool = false, svm: Bool = false) {
        self.eimAuto = eimAuto
        self.kvmIrqchipInKernel = kvmIrqchipInKernel
        self.buggyEIM = buggyEIM
        self.svm = svm
    }
}

extension VTdConfiguration {
    /// Resolves eim=auto and svm as intel-iommu's realize does, in its order and words; nil, or
    /// why the properties cannot be combined.
    public mutating func resolve(_ facts: HostFacts) -> String? {
        if facts.eimAuto {
            // EIM needs interrupt remapping, and 32-bit destinations someone can deliver.
            extendedInterruptMode = interruptRemapping && (facts.kvmIrqchipInKernel || facts.buggyEIM)
        } else if extendedInterruptMode && !interruptRemapping {
            return "eim=on cannot be selected without intremap=on"
        }
        if facts.svm {
            if !deviceIOTLB { return "svm=on needs device-iotlb=on" }
            if !firstLevel { return "svm=on needs fsts=on" }
            if !dmaTranslation { return "svm=on needs dma-translation=on" }
            if !pasid { return "svm=on needs PASID support (pasid-bits=1..20)" }
            pageRequests = true
        }
        return nil
    }
}
