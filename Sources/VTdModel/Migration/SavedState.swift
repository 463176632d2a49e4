// The unit's architectural state, as migration carries it: the register window (every
// register's stored value, so queue heads and tails, fault records, event masks and pending
// bits, page request queue pointers) and what the unit latched from it (the root table of the
// last SRTP, the interrupt remapping table of the last SIRTP, the next fault record).
// Caches (IOTLB, context, PASID, interrupt entry) are not state: the destination rebuilds them
// from guest memory, as hardware would after a global invalidation. QEMU's intel-iommu migrates
// the same things (its vmstate: root, intr_root, iq, csr[], ...).

public struct SavedState: Equatable, Sendable {
    /// CAP and ECAP of the unit that saved: a unit with other capabilities cannot take the state.
    public var capability: UInt64
    public var extendedCapability: UInt64
    /// The register window, one stored value per 32-bit word.
    public var registerWords: [UInt32]
    public var latchedRootTable: RootTablePointer?
    public var latchedInterruptRemappingTable: UInt64
    public var nextFaultRecord: Int
}

extension UnitState {
    func savedState() -> SavedState {
        SavedState(capability: registers.get64(Reg.capability),
                   extendedCapability: registers.get64(Reg.extendedCapability),
                   registerWords: registerWords,
                   latchedRootTable: latchedRootTable,
                   latchedInterruptRemappingTable: interruptRemapping.latchedTable.rawValue,
                   nextFaultRecord: faults.nextRecord)
    }

    /// Why this unit cannot take `saved`, or nil when it can.
    func incompatibility(of saved: SavedState) -> StateBlobError? {
        let capability = registers.get64(Reg.capability), extended = registers.get64(Reg.extendedCapability)
        if saved.capability != capability || saved.extendedCapability != extended {
            return .configurationMismatch(savedCapability: saved.capability, savedExtended: saved.extendedCapability,
                                          capability: capability, extended: extended)
        }
        let words = registers.size / 4
        if saved.registerWords.count != words {
            return .invalidField("register window of \(saved.registerWords.count * 4) bytes, this unit has \(registers.size)")
        }
        // The image must agree with the header and with what never changes.
        for offset in [Reg.version, Reg.capability, Reg.capability + 4, Reg.extendedCapability, Reg.extendedCapability + 4]
        where saved.registerWords[offset / 4] != registers.get32(offset) {
            return .invalidField("read-only register at 0x\(String(offset, radix: 16)) differs from this unit's")
        }
        if !(0..<faults.count).contains(saved.nextFaultRecord) {
            return .invalidField("next fault record \(saved.nextFaultRecord) of \(faults.count)")
        }
        // FSTS.FRI names a fault recording register software then reads (QEMU 11.1 aborted a
        // destination on an out-of-range index in the stream): it must be one this unit has.
        let recordIndex = FaultStatus(rawValue: saved.registerWords[Reg.faultStatus / 4]).faultRecordIndex
        if recordIndex >= faults.count {
            return .invalidField("fault record index (FSTS.FRI) \(recordIndex) of \(faults.count)")
        }
        if let root = saved.latchedRootTable, root.address & ~hostAddressMask != 0 || root.address & 0xFFF != 0 {
            return .invalidField("latched root table 0x\(String(root.address, radix: 16)) is not a page within aw-bits")
        }
        if saved.latchedInterruptRemappingTable & ~(hostAddressMask | 0xFFF) != 0 {
            return .invalidField("latched IRTA 0x\(String(saved.latchedInterruptRemappingTable, radix: 16)) is beyond aw-bits")
        }
        return nil
    }

    /// Takes `saved` (checked with `incompatibility`): the state it describes, caches empty.
    mutating func restore(_ saved: SavedState) {
        reset()
        restoreRegisters(saved.registerWords, saved)
        // GSTS came back raw, past the setter that gates lock-free IOTLB hits (IOTLB.swift).
        caches.iotlb.allowConcurrentLookups(GlobalCommand(rawValue: registers.get32(Reg.globalStatus)).contains(.translationEnable))
        latchedRootTable = saved.latchedRootTable
    }
}

extension UnitState {
    /// Hands each owner its part of the migrated window; the unit keeps the rest (with the
    /// sub-states' words left 0).
    private mutating func restoreRegisters(_ words: [UInt32], _ saved: SavedState) {
        var own = words
        for file in subStateRegisters {
            own.replaceSubrange(file.wordRange, with: repeatElement(0, count: file.wordRange.count))
        }
        registers.restore(rawWords: own)
        faults.restore(window: words, nextRecord: saved.nextFaultRecord)
        invalidationQueue.restore(window: words)
        interruptRemapping.restore(window: words, latchedTable: InterruptRemappingTableAddress(
            rawValue: saved.latchedInterruptRemappingTable))
        pageRequests.restore(window: words)
    }
}

extension VTdUnit {
    /// The architectural state as a versioned, checksummed blob (`StateBlob`).
    public func saveState() -> [UInt8] {
        StateBlob.encode(state.withLock { $0.savedState() })
    }

    /// Replaces this unit's state with the one in `blob`, or changes nothing and says why not.
    /// Caches start empty; the host is asked to re-query every device's translation and every
    /// interrupt route, since they may all differ from what it had.
    public func loadState(_ blob: UnsafeRawBufferPointer) throws(StateBlobError) {
        let saved = try StateBlob.decode(blob)
        let problem: StateBlobError? = state.withLock { s in
            if let problem = s.incompatibility(of: saved) { return problem }
            s.restore(saved)
            return nil
        }
        if let problem { throw problem }
        platform.notify(.contextChanged(sid: nil, pasid: nil))
        hostObserver?.translationSetupChanged(sourceID: nil, pasid: nil, descriptorIndex: nil)
        platform.notify(.interruptCacheInvalidate(index: 0, count: 0))
    }
}
