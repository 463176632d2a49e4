// Differential property test of the caches and the invalidation paths: random table edits,
// invalidations (through the queue, each followed by a wait descriptor) and translations,
// with every cached answer checked against the uncached walker. The property (VT-d spec 6.5):
// once an invalidation covering a change and its wait descriptor have completed, no
// translation may differ from a fresh walk of the tables. Before that, either answer is
// allowed, so pages changed since their last covering invalidation are not compared.

import Testing
@testable import VTdModel

// Seeded with SplitMix64 (Translation/ReferenceWalkerTests.swift): the same run everywhere.

/// One device in its own domain, with the tables the test edits.
private struct Device {
    let sid: RequesterID
    let domain: DomainID
    /// First level: the PASID entry of RID_PASID; legacy: the context entry.
    let entryAddress: UInt64
    /// Top-level tables the entry can point at (switching between them is a context change).
    var tables: [UInt64]
    var current = 0
}

private final class DifferentialScenario {
    enum Mode { case firstLevel, legacySecondLevel }

    // The pages the test maps, changes and probes.
    static let smallPages: [UInt64] = (0..<24).map { 0x10_0000 + UInt64($0) * 0x1000 }
    static let bigRegion: UInt64 = 0x4000_0000
    static let bigRegionPages: [UInt64] = (0..<8).map { bigRegion + UInt64($0) * 0x1000 }
    static let probes: [UInt64] = smallPages + bigRegionPages
        + [bigRegion + 0x10_0000, bigRegion + 0x1F_F000, 0x7000_0000, 0x10_0000 + 24 * 0x1000]

    let mode: Mode
    let guest = GuestMemory()
    let unit: VTdUnit
    private var devices: [Device] = []
    /// Probed pages changed since the last invalidation that covers them, per device. The value
    /// says whether a non-leaf entry changed (then IH must be 0).
    private var dirty: [[UInt64: Bool]]
    /// The device's context/PASID entry changed since the last full flush of it.
    private var entryDirty: [Bool]
    var rng: SplitMix64
    var comparisons = 0

    // Queue
    private let queue: GuestQueue

    init(mode: Mode, seed: UInt64) {
        self.mode = mode
        rng = SplitMix64(state: seed)
        var configuration: VTdConfiguration = mode == .firstLevel ? .scalableFirstLevel : .legacy
        configuration.iotlbCapacity = 64  // small, so eviction is part of the run
        unit = guest.makeUnit(configuration)
        dirty = []
        entryDirty = []
        switch mode {
        case .firstLevel:
            let root = guest.scalableRoot()
            for (i, sid) in [UInt16(0x0010), 0x0018, 0x0100].enumerated() {
                let device = root.device(sid)
                let first = device.firstLevel(pasid: 0, domain: UInt16(i + 1))
                let second = FirstLevelTables(guest: guest, levels: 4)
                devices.append(Device(sid: RequesterID(rawValue: sid), domain: DomainID(rawValue: UInt16(i + 1)), entryAddress: device.pasidEntryAddress(0),
                                      tables: [first.root, second.root]))
            }
            unit.enableTranslation(root)
        case .legacySecondLevel:
            let root = guest.legacyRoot()
            for (i, sid) in [UInt16(0x0010), 0x0018, 0x0100].enumerated() {
                let device = root.device(sid, domain: UInt16(i + 1))
                let second = SecondLevelTables(guest: guest, levels: 4)
                devices.append(Device(sid: RequesterID(rawValue: sid), domain: DomainID(rawValue: UInt16(i + 1)), entryAddress: device.contextEntry,
                                      tables: [device.secondLevel.root, second.root]))
            }
            unit.enableTranslation(root)
        }
        // Queued invalidation on, as a driver enables it; 256-bit descriptors for PASID-based ones.
        queue = GuestQueue(unit, guest: guest, wide: mode == .firstLevel)
        dirty = Array(repeating: [:], count: devices.count)
        entryDirty = Array(repeating: false, count: devices.count)
        for d in devices.indices {
            for t in devices[d].tables.indices {
                for page in Self.smallPages { mapLeaf(d, table: t, page, randomOutput(), writable: true) }
                mapBigRegion(d, table: t, asLargePage: t == 0)
            }
        }
    }

    // MARK: Tables

    private func randomOutput() -> UInt64 { 0x2_0000_0000 + UInt64.random(in: 0..<4096, using: &rng) * 0x1000 }

    /// Address of the entry mapping `iova` at `level` in table tree `t` of device `d`.
    private func entry(_ d: Int, table t: Int, _ iova: UInt64, level: Int) -> UInt64 {
        let root = devices[d].tables[t]
        switch mode {
        case .firstLevel:
            return FirstLevelTables.walk(guest: guest, root: root, iova: iova, level: level)
        case .legacySecondLevel:
            return SecondLevelTables.walk(guest: guest, root: root, iova: iova, level: level)
        }
    }

    private func leafBits(writable: Bool) -> UInt64 {
        switch mode {
        case .firstLevel: 0x8000_0000_0000_0065 | (writable ? 0x2 : 0)  // P, U/S, A, D, XD (+ R/W)
        case .legacySecondLevel: 0x1 | (writable ? 0x2 : 0)             // R (+ W)
        }
    }

    private func mapLeaf(_ d: Int, table t: Int, _ iova: UInt64, _ output: UInt64, writable: Bool) {
        guest.write64(entry(d, table: t, iova, level: 1), output | leafBits(writable: writable))
    }

    /// The 2 MiB region: one large leaf, or a table of 4 KiB leaves for its first 8 pages.
    private func mapBigRegion(_ d: Int, table t: Int, asLargePage: Bool) {
        let l2 = entry(d, table: t, Self.bigRegion, level: 2)
        if asLargePage {
            let output = 0x3_0000_0000 + UInt64.random(in: 0..<64, using: &rng) << 21
            guest.write64(l2, output | leafBits(writable: true) | 0x80)
        } else {
            let table = guest.allocatePage()
            guest.write64(l2, table | (mode == .firstLevel ? 0x27 : 0x7))
            for page in Self.bigRegionPages { mapLeaf(d, table: t, page, randomOutput(), writable: true) }
        }
    }

    private func isLargePage(_ d: Int) -> Bool {
        guest.read64(entry(d, table: devices[d].current, Self.bigRegion, level: 2)) & 0x80 != 0
    }

    private func markDirty(_ d: Int, _ pages: [UInt64], nonLeaf: Bool) {
        for page in pages { dirty[d][page >> 12] = (dirty[d][page >> 12] ?? false) || nonLeaf }
    }

    // MARK: Operations

    func step() {
        switch UInt64.random(in: 0..<100, using: &rng) {
        case 0..<55: translateAndCompare()
        case 55..<68: editLeaf()
        case 68..<76: toggleBigRegion()
        case 76..<78: switchTables()
        default: invalidate()
        }
    }

    private func translateAndCompare() {
        let d = Int.random(in: 0..<devices.count, using: &rng)
        let address = Self.probes.randomElement(using: &rng)! + UInt64.random(in: 0..<0x1000, using: &rng) & ~7
        let access: Permissions = Bool.random(using: &rng) ? .read : .write
        let request = TranslationRequest(sourceID: devices[d].sid, address: address, access: access, recordsFaults: false)
        let cached = unit.translate(request)
        guard !entryDirty[d], dirty[d][address >> 12] == nil else { return }
        let reference = unit.walkUncached(request)
        comparisons += 1
        #expect(cached == reference,
                "\(mode) device \(d) \(access) 0x\(String(address, radix: 16)): cached \(cached), tables say \(reference)")
    }

    private func editLeaf() {
        let d = Int.random(in: 0..<devices.count, using: &rng)
        let t = devices[d].current
        let pages = isLargePage(d) ? Self.smallPages : Self.smallPages + Self.bigRegionPages
        let page = pages.randomElement(using: &rng)!
        switch UInt64.random(in: 0..<3, using: &rng) {
        case 0: mapLeaf(d, table: t, page, randomOutput(), writable: true)
        case 1: mapLeaf(d, table: t, page, guest.read64(entry(d, table: t, page, level: 1)) & 0x000F_FFFF_FFFF_F000,
                        writable: Bool.random(using: &rng))
        default: guest.write64(entry(d, table: t, page, level: 1), 0)
        }
        markDirty(d, [page], nonLeaf: false)
    }

    private func toggleBigRegion() {
        let d = Int.random(in: 0..<devices.count, using: &rng)
        mapBigRegion(d, table: devices[d].current, asLargePage: !isLargePage(d))
        markDirty(d, Self.probes.filter { $0 >> 21 == Self.bigRegion >> 21 }, nonLeaf: true)
    }

    /// Points the device at its other table tree: a context change (PASID entry or context entry).
    private func switchTables() {
        let d = Int.random(in: 0..<devices.count, using: &rng)
        devices[d].current ^= 1
        let root = devices[d].tables[devices[d].current]
        switch mode {
        case .firstLevel:
            let word = guest.read64(devices[d].entryAddress + 16)
            guest.write64(devices[d].entryAddress + 16, word & 0xFFF | root)
        case .legacySecondLevel:
            let word = guest.read64(devices[d].entryAddress)
            guest.write64(devices[d].entryAddress, word & 0xFFF | root)
        }
        entryDirty[d] = true
    }

    private func invalidate() {
        let d = Int.random(in: 0..<devices.count, using: &rng)
        let did = devices[d].domain
        var descriptors: [InvalidationDescriptor] = []
        var cleans: [() -> Void] = []
        switch UInt64.random(in: 0..<10, using: &rng) {
        case 0..<5:
            // Page-selective, one page (or the 2 MiB region around it), as an unmap does.
            guard let (page, nonLeaf) = dirty[d].randomElement(using: &rng) else { return }
            let region = UInt64.random(in: 0..<4, using: &rng) == 0
            let am: UInt64 = region ? 9 : 0
            let address = (page << 12) & ~((1 << (12 + am)) - 1)
            let hint = !nonLeaf && !region && Bool.random(using: &rng)
            descriptors.append(mode == .firstLevel
                ? Desc.pasidIOTLBPages(did.rawValue, pasid: 0, address, am: am, ih: hint)
                : Desc.iotlbPages(did.rawValue, address, am: am, ih: hint))
            cleans.append { [self] in
                for key in dirty[d].keys where key >> (am) == page >> (am) { dirty[d][key] = nil }
            }
        case 5..<7:
            descriptors.append(mode == .firstLevel ? Desc.pasidIOTLBAll(did.rawValue, pasid: 0) : Desc.iotlbDomain(did.rawValue))
            cleans.append { [self] in dirty[d] = [:] }
        case 7:
            descriptors.append(Desc.iotlbGlobal())
            cleans.append { [self] in for i in dirty.indices { dirty[i] = [:] } }
        default:
            // A context change, flushed as Linux tears down and sets up an entry.
            switch mode {
            case .firstLevel:
                descriptors += [Desc.pasidCache(granularity: 1, did.rawValue, pasid: 0), Desc.pasidIOTLBAll(did.rawValue, pasid: 0)]
            case .legacySecondLevel:
                descriptors += [Desc.contextDevice(did.rawValue, sid: devices[d].sid.rawValue, fm: 0), Desc.iotlbDomain(did.rawValue)]
            }
            cleans.append { [self] in dirty[d] = [:]; entryDirty[d] = false }
        }
        // Only a completed wait makes the invalidation count.
        let completed = queue.flush(descriptors)
        #expect(completed, "the wait after \(descriptors) did not complete")
        #expect(!queue.queueError)
        if completed { for clean in cleans { clean() } }
    }
}

extension FirstLevelTables {
    /// The entry for `iova` at `level` under `root`, creating missing tables on the way.
    static func walk(guest: GuestMemory, root: UInt64, iova: UInt64, level: Int) -> UInt64 {
        var table = root
        for current in stride(from: 4, to: level, by: -1) {
            let entry = table + tableIndex(iova, level: current) * 8
            var raw = guest.read64(entry)
            if raw & present == 0 || (current == 2 && raw & pageSize != 0) {
                raw = guest.allocatePage() | present | writable | user | accessed
                guest.write64(entry, raw)
            }
            table = raw & 0x000F_FFFF_FFFF_F000
        }
        return table + tableIndex(iova, level: level) * 8
    }
}

extension SecondLevelTables {
    static func walk(guest: GuestMemory, root: UInt64, iova: UInt64, level: Int) -> UInt64 {
        var table = root
        for current in stride(from: 4, to: level, by: -1) {
            let entry = table + tableIndex(iova, level: current) * 8
            var raw = guest.read64(entry)
            if raw & (read | write) == 0 || (current == 2 && raw & pageSize != 0) {
                raw = guest.allocatePage() | read | write | execute
                guest.write64(entry, raw)
            }
            table = raw & 0x000F_FFFF_FFFF_F000
        }
        return table + tableIndex(iova, level: level) * 8
    }
}

@Suite("Invalidation: differential against the uncached walker")
struct InvalidationDifferentialTests {
    @Test("first level, PASID-based invalidations: after invalidate + wait no translation differs (6.5.2.4)",
          arguments: [UInt64(1), 2, 3])
    func firstLevel(seed: UInt64) {
        let scenario = DifferentialScenario(mode: .firstLevel, seed: seed)
        for _ in 0..<3000 { scenario.step() }
        #expect(scenario.comparisons > 500)
    }

    @Test("legacy second level, IOTLB and context invalidations: after invalidate + wait no translation differs (6.5.2.1-2)",
          arguments: [UInt64(11), 12, 13])
    func legacySecondLevel(seed: UInt64) {
        let scenario = DifferentialScenario(mode: .legacySecondLevel, seed: seed)
        for _ in 0..<3000 { scenario.step() }
        #expect(scenario.comparisons > 500)
    }
}
