// The state dump (swiftvtd_dump_state, QEMU's `info swift-vtd`): the unit's state as text for
// people and for grep. Registers are decoded; each device translations have walked for gets one
// line in a fixed form, then the table entries it uses as guest memory holds them now:
//
//   device 00:03.0 pasid none pgtt first-level did 1 walks 4        (scalable mode: the PGTT)
//   device 00:04.0 pasid none tt multi-level did 2 walks 1          (legacy mode: the context TT)
//   device 00:05.0 pasid 7 type unknown walks 1 fault 0x41          (no translation type found)
//
// The state is copied under the lock in one go; guest memory is read after unlocking.

struct DumpSnapshot {
    var registers: RegisterFile
    var latchedRootTable: RootTablePointer?
    var latchedInterruptRemappingTable: InterruptRemappingTableAddress
    var pendingFaults: [(index: Int, record: FaultRecordingRegister)]
    var statistics: TranslationStatistics
    var iotlbEntries: Int
    var contextEntries: Int
    var pasidEntries: Int
    var interruptEntries: Int
    var devices: [DeviceRoute]
}

extension UnitState {
    /// The lock-free hit path counts its hits in the IOTLB's storage.
    private var statisticsWithLockFreeHits: TranslationStatistics {
        var st = statistics
        st.iotlbHits &+= caches.iotlb.lockFreeHits
        return st
    }

    func dumpSnapshot() -> DumpSnapshot {
        DumpSnapshot(registers: registerWindow, latchedRootTable: latchedRootTable,
                     latchedInterruptRemappingTable: interruptRemapping.latchedTable,
                     pendingFaults: (0..<faults.count).compactMap { i in
                         let r = faults.record(i)
                         return r.fault ? (i, r) : nil
                     },
                     statistics: statisticsWithLockFreeHits, iotlbEntries: caches.iotlb.count, contextEntries: caches.context.count,
                     pasidEntries: caches.pasid.count, interruptEntries: interruptRemapping.entryCache.validEntryCount,
                     devices: devicesSeen.all)
    }
}

extension VTdUnit {
    /// The unit's state as text (see the top of this file). Reads guest memory, never under the lock.
    public func dumpState() -> String {
        let s = state.withLock { $0.dumpSnapshot() }
        var out = StateDumpWriter(configuration: configuration, snapshot: s, platform: platform)
        return out.render()
    }
}

struct StateDumpWriter {
    let configuration: VTdConfiguration
    let snapshot: DumpSnapshot
    let platform: any Platform
    var text = ""

    init(configuration: VTdConfiguration, snapshot: DumpSnapshot, platform: any Platform) {
        self.configuration = configuration
        self.snapshot = snapshot
        self.platform = platform
    }

    private var r: RegisterFile { snapshot.registers }

    mutating func render() -> String {
        unit()
        globalStatus()
        rootTable()
        invalidationQueue()
        interruptRemapping()
        faults()
        if configuration.pageRequests { pageRequestQueue() }
        caches()
        for device in snapshot.devices { self.device(device) }
        return text
    }

    private mutating func line(_ s: String) {
        text += s
        text += "\n"
    }

    // MARK: Registers

    private mutating func unit() {
        let c = configuration
        var modes = [c.scalableMode ? "scalable mode" : "legacy mode"]
        if c.firstLevel { modes.append(c.secondLevelWithFirstLevel ? "first+second level" : "first level") }
        if c.nesting { modes.append("nesting") }
        if c.pasid { modes.append("pasid \(c.pasidBits) bits") }
        if c.cachingMode { modes.append("caching mode") }
        if c.pageRequests { modes.append("page requests") }
        line("unit: VT-d \(r.get32(Reg.version) >> 4).\(r.get32(Reg.version) & 0xF), aw-bits \(c.addressWidth), "
             + modes.joined(separator: ", ") + ", \(c.faultRecords) fault record(s), iotlb \(c.iotlbCapacity) entries")
        line("CAP \(hex(r.get64(Reg.capability), 16)) ECAP \(hex(r.get64(Reg.extendedCapability), 16))")
    }

    private mutating func globalStatus() {
        let gsts = GlobalCommand(rawValue: r.get32(Reg.globalStatus))
        let names: [(GlobalCommand, String)] = [
            (.translationEnable, "TES"), (.setRootTablePointer, "RTPS"), (.setFaultLog, "FLS"),
            (.enableAdvancedFaultLogging, "AFLS"), (.writeBufferFlush, "WBFS"), (.queuedInvalidationEnable, "QIES"),
            (.interruptRemappingEnable, "IRES"), (.setInterruptRemappingTablePointer, "IRTPS"),
            (.compatibilityFormatInterrupts, "CFIS"),
        ]
        let set = names.filter { gsts.contains($0.0) }.map(\.1)
        line("GSTS \(hex(UInt64(gsts.rawValue), 8))" + (set.isEmpty ? " (none)" : " " + set.joined(separator: " "))
             + "; DMA remapping " + (gsts.contains(.translationEnable) ? "on" : "off"))
    }

    private mutating func rootTable() {
        let rtaddr = RootTableAddress(rawValue: r.get64(Reg.rootTableAddress))
        guard let root = snapshot.latchedRootTable else {
            line("root table: none latched (RTADDR \(hex(rtaddr.rawValue)))")
            return
        }
        line("root table: \(hex(root.address)) \(Self.name(root.mode)) mode (RTADDR \(hex(rtaddr.rawValue)))")
    }

    private mutating func invalidationQueue() {
        let on = GlobalCommand(rawValue: r.get32(Reg.globalStatus)).contains(.queuedInvalidationEnable)
        let iqa = InvalidationQueueAddress(rawValue: r.get64(Reg.invalidationQueueAddress))
        let head = InvalidationQueuePointer(rawValue: r.get64(Reg.invalidationQueueHead))
        let tail = InvalidationQueuePointer(rawValue: r.get64(Reg.invalidationQueueTail))
        let wide = iqa.wideDescriptors && configuration.scalableMode
        line("invalidation queue: \(on ? "enabled" : "disabled"), base \(hex(iqa.base)), \(iqa.entryCount) x "
             + "\(wide ? 256 : 128)-bit descriptors, head \(head.index(wideDescriptors: wide)) tail "
             + "\(tail.index(wideDescriptors: wide)), ICS \(hex(UInt64(r.get32(Reg.invalidationCompletionStatus)), 1)), "
             + "IQERCD \(hex(r.get64(Reg.invalidationQueueErrorRecord)))")
        eventLine("invalidation event", .invalidationCompletion)
    }

    private mutating func interruptRemapping() {
        guard configuration.interruptRemapping else {
            line("interrupt remapping: not supported (intremap off)")
            return
        }
        let gsts = GlobalCommand(rawValue: r.get32(Reg.globalStatus))
        let irta = snapshot.latchedInterruptRemappingTable
        line("interrupt remapping: \(gsts.contains(.interruptRemappingEnable) ? "enabled" : "disabled"), table "
             + "\(hex(irta.base)) \(irta.entryCount) entries \(irta.extendedInterruptMode ? "x2APIC" : "xAPIC"), "
             + "compatibility format \(gsts.contains(.compatibilityFormatInterrupts) ? "passes through" : "blocked")"
             + " (IRTA \(hex(r.get64(Reg.interruptRemappingTableAddress))))")
    }

    private mutating func faults() {
        let fsts = FaultStatus(rawValue: r.get32(Reg.faultStatus))
        let names: [(FaultStatus, String)] = [
            (.primaryFaultOverflow, "PFO"), (.primaryPendingFault, "PPF"), (.invalidationQueueError, "IQE"),
            (.invalidationCompletionError, "ICE"), (.invalidationTimeoutError, "ITE"),
        ]
        let set = names.filter { fsts.contains($0.0) }.map(\.1)
        line("fault status: FSTS \(hex(UInt64(fsts.rawValue), 8))" + (set.isEmpty ? " (none)" : " " + set.joined(separator: " "))
             + " FRI \(fsts.faultRecordIndex), \(snapshot.pendingFaults.count) of \(configuration.faultRecords) record(s) pending")
        eventLine("fault event", .fault)
        for (index, f) in snapshot.pendingFaults {
            let pasid = f.pasidPresent ? "\(f.pasid.rawValue)" : "none"
            let what = f.reason >= 0x20 && f.reason <= 0x2F
                ? "interrupt index \(f.interruptIndex)"
                : "\(f.isRead ? "read" : "write") \(hex(f.faultInfo))"
            line("fault record \(index): sid \(f.sourceID) pasid \(pasid) reason "
                 + "\(hex(UInt64(f.reason), 2)) \(what)")
        }
    }

    private mutating func pageRequestQueue() {
        let pqa = PageRequestQueueAddress(rawValue: r.get64(Reg.pageRequestQueueAddress))
        let prs = PageRequestStatus(rawValue: r.get32(Reg.pageRequestStatus))
        line("page request queue: base \(hex(pqa.base)), \(pqa.entryCount) entries, head "
             + "\(PageRequestQueuePointer(rawValue: r.get64(Reg.pageRequestQueueHead)).index) tail "
             + "\(PageRequestQueuePointer(rawValue: r.get64(Reg.pageRequestQueueTail)).index), PRS "
             + "\(hex(UInt64(prs.rawValue), 1))" + (prs.contains(.pendingPageRequest) ? " PPR" : "")
             + (prs.contains(.pageRequestOverflow) ? " PRO" : ""))
        eventLine("page request event", .pageRequest)
    }

    private mutating func eventLine(_ name: String, _ event: EventInterrupt) {
        let control = EventControl(rawValue: r.get32(event.control))
        let address = UInt64(r.get32(event.upperAddress)) << 32 | UInt64(r.get32(event.address))
        line("\(name): \(control.contains(.interruptMask) ? "masked" : "unmasked")"
             + (control.contains(.interruptPending) ? ", pending" : "")
             + ", address \(hex(address)) data \(hex(UInt64(r.get32(event.data)), 4))")
    }

    private mutating func caches() {
        let st = snapshot.statistics
        line("caches: iotlb \(snapshot.iotlbEntries)/\(configuration.iotlbCapacity) entries, hits \(st.iotlbHits) "
             + "misses \(st.walks) faults \(st.faults) untranslated \(st.untranslated); context entries "
             + "\(snapshot.contextEntries); pasid entries \(snapshot.pasidEntries); interrupt entries "
             + "\(snapshot.interruptEntries)")
    }

    // MARK: Devices

    private mutating func device(_ d: DeviceRoute) {
        var s = "device \(d.sourceID) pasid \(d.pasid.map { "\($0.rawValue)" } ?? "none") "
        switch d.kind {
        case .legacy(let tt): s += "tt \(Self.name(tt))"
        case .scalable(let pgtt): s += "pgtt \(Self.name(pgtt))"
        case .unknown: s += "type unknown"
        }
        if let did = d.domainID { s += " did \(did.rawValue)" }
        s += " walks \(d.walks)"
        if let fault = d.lastFault { s += " fault \(hex(UInt64(fault.rawValue), 2)) (\(fault))" }
        line(s)
        if let root = snapshot.latchedRootTable, !root.blocksAllDMA { entries(of: d, root: root) }
    }

    /// The root, context and PASID entries `d` uses, as guest memory holds them now.
    private mutating func entries(of d: DeviceRoute, root: RootTablePointer) {
        let requester = d.sourceID
        let bus = UInt64(requester.bus), devfn = requester.devfn
        let rootAddress = root.address &+ bus * RootEntry.size
        guard let rootEntry = platform.readRootEntry(rootAddress) else { return unreadable("root entry", rootAddress) }
        line("  root entry \(hex(rootAddress)): \(hex(rootEntry.lo, 16)) \(hex(rootEntry.hi, 16))")
        let half = rootEntry.half(forDevfn: devfn, scalable: root.isScalable)
        guard half.isPresent else { return line("  (root entry not present)") }
        guard root.isScalable else {
            let address = half.contextTablePointer &+ UInt64(devfn) * ContextEntry.size
            guard let c = platform.readContextEntry(address) else { return unreadable("context entry", address) }
            return line("  context entry \(hex(address)): \(hex(c.lo, 16)) \(hex(c.hi, 16))")
        }
        let address = half.contextTablePointer &+ UInt64(devfn & 0x7F) * ScalableContextEntry.size
        guard let c = platform.readScalableContextEntry(address) else { return unreadable("context entry", address) }
        line("  context entry \(hex(address)): " + [c.w0, c.w1, c.w2, c.w3].map { hex($0, 16) }.joined(separator: " "))
        guard c.isPresent else { return line("  (context entry not present)") }
        let pasid = d.pasid ?? c.ridPASID
        let directoryAddress = c.pasidDirectoryPointer &+ PASIDDirectoryEntry.index(of: pasid) * PASIDDirectoryEntry.size
        guard let directory = platform.readPASIDDirectoryEntry(directoryAddress) else {
            return unreadable("pasid directory entry", directoryAddress)
        }
        line("  pasid directory entry \(hex(directoryAddress)): \(hex(directory.raw, 16))")
        guard directory.isPresent else { return line("  (pasid directory entry not present)") }
        let entryAddress = directory.pasidTablePointer &+ PASIDEntry.index(of: pasid) * PASIDEntry.size
        guard let e = platform.readPASIDEntry(entryAddress) else { return unreadable("pasid entry", entryAddress) }
        let w = e.words
        line("  pasid entry \(hex(entryAddress)) (pasid \(pasid.rawValue)): "
             + [w.0, w.1, w.2, w.3, w.4, w.5, w.6, w.7].map { hex($0, 16) }.joined(separator: " "))
    }

    private mutating func unreadable(_ what: String, _ address: UInt64) {
        line("  \(what) \(hex(address)): not readable")
    }

    // MARK: Names

    static func name(_ mode: TranslationTableMode) -> String {
        switch mode {
        case .legacy: return "legacy"
        case .scalable: return "scalable"
        case .reserved: return "reserved (blocks all DMA)"
        case .abortDMA: return "abort-DMA"
        }
    }

    static func name(_ type: ContextEntry.TranslationType) -> String {
        switch type {
        case .multiLevel: return "multi-level"
        case .deviceTLB: return "device-tlb"
        case .passThrough: return "pass-through"
        case .reserved: return "reserved"
        }
    }

    static func name(_ type: PASIDEntry.TranslationType) -> String {
        switch type {
        case .firstLevel: return "first-level"
        case .secondLevel: return "second-level"
        case .nested: return "nested"
        case .passThrough: return "pass-through"
        }
    }
}

/// "0x" and at least `digits` hex digits.
func hex(_ value: UInt64, _ digits: Int = 1) -> String {
    let s = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - s.count)) + s
}
