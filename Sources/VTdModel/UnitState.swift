// The unit's mutable state. Only touched under VTdUnit.state's lock; every method here is
// pure with respect to the outside world: what must reach the host goes into `Effects`.
//
// The parts with registers and rules of their own are sub-states, each owning its slice of the
// register window: fault recording, the invalidation queue, interrupt remapping and the page
// request queue; the translation caches are one too. `registers` holds the rest (capabilities, GCMD/GSTS, RTADDR, register-based
// invalidation). MMIO goes to the owner of the offset; migration and the state dump see one
// window composed from all of them.

struct UnitState: Sendable {
    // Declaration order is memory order (the state has an allocation of its own, StateLock):
    // what an IQT write and a translate miss read comes first, so that the strict-mode unmap
    // cycle finds it in a few cache lines; what only the state dump reads, or rarer paths,
    // comes after it.

    /// A host binding observer is installed: record PASID-IOTLB descriptors and setup changes for it.
    var hostBound = false
    /// Hears trace records (Trace.swift); nil unless the host asked for them. Unretained: the
    /// unit owns the sink (`VTdUnit.traceSink`).
    var tracer: TraceHook?
    /// The root table GCMD.SRTP latched (nil until the guest sets one); translation walks it.
    var latchedRootTable: RootTablePointer?
    /// Which (sid, pasid) pairs the host wants map/unmap events for.
    var notifiers = NotifierRegistry()
    /// The IOTLB, context and PASID caches and the invalidation generation.
    var caches: TranslationCaches
    var invalidationQueue: InvalidationQueueState
    /// The register window, but for the parts a sub-state owns (their words here stay 0).
    var registers: RegisterFile
    var faults: FaultRecordingState
    var configuration: VTdConfiguration
    /// Domains nested translations were given for: second-stage invalidations reach all their addresses.
    var nestedDomains = NestedDomains()
    /// For the state dump: translate counters, and what walks found per device.
    var statistics = TranslationStatistics()
    var devicesSeen = DevicesSeen()
    var interruptRemapping: InterruptRemappingState
    var pageRequests: PageRequestQueueState
    /// What hosts with MAP notifiers were told is mapped (caching-mode shadowing).
    var shadows = ShadowRecords()

    init(configuration: VTdConfiguration) {
        self.configuration = configuration
        registers = RegisterFile(size: Reg.windowSize(faultRecords: configuration.faultRecords))
        (faults, invalidationQueue, interruptRemapping, pageRequests) = Self.subStates(configuration)
        caches = TranslationCaches(iotlbCapacity: configuration.iotlbCapacity)
        defineRegisters()
    }

    /// The sub-states as `c` defines them, registers at their reset values.
    static func subStates(_ c: VTdConfiguration)
        -> (FaultRecordingState, InvalidationQueueState, InterruptRemappingState, PageRequestQueueState) {
        let addressMask = UInt64.mask(c.addressWidth - 1, 0)
        return (FaultRecordingState(configuration: c),
                InvalidationQueueState(configuration: c, hostAddressMask: addressMask),
                InterruptRemappingState(configuration: c, hostAddressMask: addressMask),
                PageRequestQueueState(configuration: c, hostAddressMask: addressMask))
    }

    mutating func reset() {
        registers.reset()
        faults.reset()
        invalidationQueue.reset()
        interruptRemapping.reset()
        pageRequests.reset()
        caches.iotlb.allowConcurrentLookups(false)  // GSTS.TES is clear after reset
        latchedRootTable = nil
        caches.removeAll()
        devicesSeen.removeAll()
        nestedDomains.removeAll()
    }

    /// The register value, or nil for an access the window does not accept.
    func mmioRead(offset: Int, width: Int) -> UInt64? {
        guard registers.accepts(offset, width: width) else { return nil }
        // Accesses are naturally aligned and every owner's slice starts and ends at an 8-byte
        // boundary, so one access never spans two owners.
        switch offset {
        case InvalidationQueueState.offsets: return invalidationQueue.registers.read(offset, width: width)
        case InterruptRemappingState.offsets: return interruptRemapping.registers.read(offset, width: width)
        case PageRequestQueueState.offsets: return pageRequests.registers.read(offset, width: width)
        case _ where FaultRecordingState.owns(offset): return faults.read(offset, width: width)
        default: return registers.read(offset, width: width)
        }
    }

    mutating func mmioWrite(offset: Int, value: UInt64, width: Int, effects: inout Effects) {
        guard registers.accepts(offset, width: width) else {
            effects.log(.guestError, Self.rejectedAccess("write", offset: offset, width: width))
            return
        }
        switch offset {
        case InvalidationQueueState.offsets: invalidationQueue.guestWrite(offset, value, width: width)
        case InterruptRemappingState.offsets: interruptRemapping.guestWrite(offset, value, width: width)
        case PageRequestQueueState.offsets: pageRequests.guestWrite(offset, value, width: width)
        case _ where FaultRecordingState.owns(offset): faults.guestWrite(offset, value, width: width)
        default: registers.write(offset, value, width: width)
        }
        registerWritten(offset: offset, width: width, effects: &effects)
    }

    /// The register files the sub-states own, in window order.
    var subStateRegisters: [RegisterFile] {
        [faults.statusRegisters, invalidationQueue.registers, interruptRemapping.registers, pageRequests.registers,
         faults.recordRegisters]
    }

    /// Every register's stored value across the window, each sub-state's in its place: the
    /// image migration carries and the state dump reads.
    var registerWords: [UInt32] {
        var words = registers.rawWords
        for file in subStateRegisters { words.replaceSubrange(file.wordRange, with: file.rawWords) }
        return words
    }

    /// The whole window in one file (diagnostics only: it copies).
    var registerWindow: RegisterFile {
        var window = registers
        window.restore(rawWords: registerWords)
        return window
    }
}
