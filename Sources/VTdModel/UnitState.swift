// The unit's mutable state. Only touched under VTdUnit.state's lock; every method here is
// pure with respect to the outside world: what must reach the host goes into `Effects`.

struct UnitState: Sendable {
    var configuration: VTdConfiguration
    /// A host binding observer is installed: record PASID-IOTLB descriptors and setup changes for it.
    var hostBound = false
    /// The register window, but for the parts a sub-state owns (their words here stay unused).
    var registers: RegisterFile
    /// The invalidation queue's registers and run state.
    var invalidationQueue: InvalidationQueueState
    /// Cached translations (IOTLB) and cached table entries.
    let iotlb: IOTLB
    var contextCache = ContextCache()
    var pasidCache = PASIDCache()
    /// Validated IRTEs (interrupt remapping).
    var interruptEntryCache = InterruptEntryCache()
    /// Page request queue slots reserved while descriptors are written to guest memory.
    var pageRequestReservations = PageRequestReservations()
    /// Bumped by every invalidation of any cache. A translate that walked the tables without
    /// the lock inserts its result only if this did not change meanwhile, so a translation
    /// never outlives the invalidation that covers it.
    var invalidationGeneration: UInt64 = 0
    /// The root table GCMD.SRTP latched (nil until the guest sets one); translation walks it.
    var latchedRootTable: RootTablePointer?
    /// The interrupt remapping table GCMD.SIRTP latched (all zero until the guest sets one).
    var latchedInterruptRemappingTable = InterruptRemappingTableAddress(rawValue: 0)
    /// The fault recording register the next fault goes to (they fill round-robin).
    var nextFaultRecord = 0
    /// Which (sid, pasid) pairs the host wants map/unmap events for.
    var notifiers = NotifierRegistry()
    /// What hosts with MAP notifiers were told is mapped (caching-mode shadowing).
    var shadows = ShadowRecords()
    /// Domains nested translations were given for: second-stage invalidations reach all their addresses.
    var nestedDomains = NestedDomains()
    /// For the state dump: translate counters, and what walks found per device.
    var statistics = TranslationStatistics()
    var devicesSeen = DevicesSeen()
    /// Hears trace records (Trace.swift); nil unless the host asked for them.
    var tracer: (any TraceSink)?

    init(configuration: VTdConfiguration) {
        self.configuration = configuration
        registers = RegisterFile(size: Reg.windowSize(faultRecords: configuration.faultRecords))
        invalidationQueue = InvalidationQueueState(configuration: configuration,
                                                   hostAddressMask: UInt64.mask(configuration.addressWidth - 1, 0))
        iotlb = IOTLB(capacity: configuration.iotlbCapacity)
        defineRegisters()
    }

    mutating func reset() {
        registers.reset()
        invalidationQueue.reset()
        iotlb.allowConcurrentLookups(false)  // GSTS.TES is clear after reset
        latchedRootTable = nil
        latchedInterruptRemappingTable = InterruptRemappingTableAddress(rawValue: 0)
        nextFaultRecord = 0
        iotlb.removeAll()
        contextCache.removeAll()
        pasidCache.removeAll()
        interruptEntryCache.invalidateAll()
        pageRequestReservations.reset()
        devicesSeen.removeAll()
        nestedDomains.removeAll()
        invalidationGeneration &+= 1
    }

    /// The register value, or nil for an access the window does not accept.
    func mmioRead(offset: Int, width: Int) -> UInt64? {
        guard registers.accepts(offset, width: width) else { return nil }
        // Accesses are naturally aligned and sub-state files start and end at 8-byte boundaries,
        // so one access never spans two owners.
        if InvalidationQueueState.offsets.contains(offset) { return invalidationQueue.registers.read(offset, width: width) }
        return registers.read(offset, width: width)
    }

    mutating func mmioWrite(offset: Int, value: UInt64, width: Int, effects: inout Effects) {
        guard registers.accepts(offset, width: width) else {
            effects.log(.guestError, Self.rejectedAccess("write", offset: offset, width: width))
            return
        }
        if InvalidationQueueState.offsets.contains(offset) {
            invalidationQueue.guestWrite(offset, value, width: width)
        } else {
            registers.write(offset, value, width: width)
        }
        registerWritten(offset: offset, width: width, effects: &effects)
    }

    /// Every register's stored value across the window, each sub-state's in its place: the
    /// image migration carries and the state dump reads.
    var registerWords: [UInt32] {
        var words = registers.rawWords
        words.replaceSubrange(invalidationQueue.registers.wordRange, with: invalidationQueue.registers.rawWords)
        return words
    }

    /// Puts back an image taken with `registerWords` (same window size).
    mutating func restoreRegisters(_ words: [UInt32]) {
        let queueWords = invalidationQueue.registers.wordRange
        var own = words
        own.replaceSubrange(queueWords, with: repeatElement(0, count: queueWords.count))
        registers.restore(rawWords: own)
        invalidationQueue.restore(rawWords: words[queueWords])
    }

    /// The whole window in one file (diagnostics only: it copies).
    var registerWindow: RegisterFile {
        var window = registers
        window.restore(rawWords: registerWords)
        return window
    }
}
