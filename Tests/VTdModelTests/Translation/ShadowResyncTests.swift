import Testing
@testable import VTdModel

/// A legacy-mode unit with caching mode, a MAP notifier on the test device and its second-level
/// tables, driven as Linux drives a caching-mode IOMMU: change a table, invalidate, through the
/// registers.
final class ShadowScenario {
    let guest = GuestMemory()
    let unit: VTdUnit
    let root: LegacyRootTable
    let device: LegacyDevice

    init(_ change: (inout VTdConfiguration) -> Void = { _ in }) throws {
        unit = guest.makeUnit(.legacy.with { $0.cachingMode = true; change(&$0) })
        root = guest.legacyRoot()
        device = root.device(domain: 3)
        try unit.setNotifications([.map, .unmap], sourceID: testRequester, pasid: nil)
        unit.enableTranslation(root)
    }

    func unmap(iova: UInt64, level: Int = 1) { device.secondLevel.update(iova: iova, level: level) { _ in 0 } }

    /// IOTLB page-selective invalidation of 2^mask pages (IVA + IOTLB register).
    func invalidatePages(_ address: UInt64, mask: UInt64 = 0, domain: UInt64 = 3) {
        unit.mmioWrite(offset: Reg.invalidateAddress, value: address | mask, width: 8)
        unit.mmioWrite(offset: Reg.iotlbInvalidate, value: 1 << 63 | 3 << 60 | domain << 32, width: 8)
    }

    /// Events since the last call.
    func take() -> [PlatformEvent] {
        let all = guest.events
        defer { seen = all.count }
        return Array(all[seen...])
    }
    private var seen = 0

    var record: [Mapping] { unit.shadowMappings(sourceID: testRequester, pasid: nil) }

    /// Every leaf the tables hold now, by a full walk.
    var tables: [Mapping] {
        var all: [Mapping] = []
        unit.forEachMapping(sourceID: testRequester, pasid: nil) { all.append($0) }
        return all
    }
}

func map(_ iova: UInt64, _ size: UInt64, to output: UInt64, _ permissions: Permissions = .readWrite) -> PlatformEvent {
    .map(sid: testRequester, pasid: nil, address: iova, size: size, translated: output, permissions: permissions)
}

func unmap(_ iova: UInt64, _ size: UInt64) -> PlatformEvent {
    .unmap(sid: testRequester, pasid: nil, address: iova, size: size)
}

@Suite("Caching-mode shadowing: invalidations re-sync MAP notifiers (QEMU's shadow page tables)")
struct ShadowResyncTests {
    @Test("map, PSI → MAP; remap elsewhere, PSI → UNMAP then MAP; unmap, PSI → UNMAP (spec 6.1 CM)")
    func pageLifecycle() throws {
        let s = try ShadowScenario()
        _ = s.take()
        s.device.map(iova: 0x5000, to: 0x9000)
        s.invalidatePages(0x5000)
        #expect(s.take() == [map(0x5000, 0x1000, to: 0x9000)])
        s.device.map(iova: 0x5000, to: 0xA000, permissions: .read)
        s.invalidatePages(0x5000)
        #expect(s.take() == [unmap(0x5000, 0x1000), map(0x5000, 0x1000, to: 0xA000, .read)])
        s.invalidatePages(0x5000)
        #expect(s.take() == [], "nothing changed: nothing mapped twice")
        s.unmap(iova: 0x5000)
        s.invalidatePages(0x5000)
        #expect(s.take() == [unmap(0x5000, 0x1000)])
        #expect(s.record.isEmpty)
    }

    @Test("a PSI reads its range only: a mapping outside it waits for its own invalidation")
    func pageSelectiveRange() throws {
        let s = try ShadowScenario()
        s.device.map(iova: 0x5000, to: 0x9000)
        s.device.map(iova: 0x40_0000, to: 0xB000)
        _ = s.take()
        s.invalidatePages(0x4000, mask: 2)  // 0x4000...0x7FFF
        #expect(s.take() == [map(0x5000, 0x1000, to: 0x9000)])
    }

    @Test("a one-page PSI reads one entry per table level, not four whole table pages, and the context entry once per setup")
    func pageSelectiveReadsEntries() throws {
        let s = try ShadowScenario()
        for i in UInt64(0)..<64 { s.device.map(iova: 0x10_0000 + i << 12, to: 0x8000_0000 + i << 12) }
        s.invalidatePages(0x10_0000, mask: 6)
        _ = s.take()
        s.device.map(iova: 0x10_0000 + 70 << 12, to: 0x9000_0000)
        let before = s.guest.bytesRead
        s.invalidatePages(0x10_0000 + 70 << 12)
        #expect(s.take() == [map(0x10_0000 + 70 << 12, 0x1000, to: 0x9000_0000)])
        // One 8-byte entry at each of the four levels: the root and context entries were read
        // by the first walk in this setup and are not read again.
        #expect(s.guest.bytesRead - before == 4 * 8)
        #expect(s.record == s.tables)
        // A context-cache invalidation re-syncs the whole space, reading root and context
        // entries again (16 bytes each); the PSIs after it read table entries only.
        let atInvalidation = s.guest.bytesRead
        s.unit.invalidateContextCache()
        #expect(s.guest.bytesRead - atInvalidation >= 2 * 16)
        for page in UInt64(71)..<73 {
            s.device.map(iova: 0x10_0000 + page << 12, to: 0x9000_0000 + page << 12)
            let start = s.guest.bytesRead
            s.invalidatePages(0x10_0000 + page << 12)
            #expect(s.guest.bytesRead - start == 4 * 8)
        }
        #expect(s.record == s.tables)
    }

    @Test("a domain-selective invalidation over many pages maps them all, and only for its domain")
    func domainSelective() throws {
        let s = try ShadowScenario()
        for i in UInt64(0)..<300 { s.device.map(iova: 0x10_0000 + i << 12, to: 0x8000_0000 + i << 12) }
        _ = s.take()
        s.unit.mmioWrite(offset: Reg.iotlbInvalidate, value: 1 << 63 | 2 << 60 | 4 << 32, width: 8)
        #expect(s.take() == [], "domain 4 is not the device's")
        s.unit.mmioWrite(offset: Reg.iotlbInvalidate, value: 1 << 63 | 2 << 60 | 3 << 32, width: 8)
        let events = s.take()
        #expect(events.count == 300)
        #expect(events.last == map(0x10_0000 + 299 << 12, 0x1000, to: 0x8000_0000 + 299 << 12))
        #expect(s.record == s.tables)
    }

    @Test("a device known to be in another domain: that domain's invalidations read none of its tables, until the context cache is invalidated")
    func otherDomainIsSkipped() throws {
        let s = try ShadowScenario()
        s.device.map(iova: 0x5000, to: 0x9000)
        s.invalidatePages(0x5000)
        _ = s.take()
        // Another device's domain (4): the first one reads root and context entries to learn
        // the domain, the next ones read nothing.
        s.invalidatePages(0x7000, domain: 4)
        let before = s.guest.bytesRead
        for page in UInt64(8)..<12 { s.invalidatePages(page << 12, domain: 4) }
        #expect(s.guest.bytesRead == before)
        #expect(s.take() == [])
        // The device moves to domain 4 (its context entry rewritten, then a global context-cache
        // invalidation): domain 4's invalidation re-syncs it again.
        s.guest.write64(s.device.contextEntry + 8, 4 << 8 | 2)  // DID 4, AW 2 (4 levels)
        s.unit.invalidateContextCache()
        _ = s.take()
        s.device.map(iova: 0x6000, to: 0xA000)
        s.invalidatePages(0x6000, domain: 4)
        #expect(s.take() == [map(0x6000, 0x1000, to: 0xA000)])
        #expect(s.record == s.tables)
    }

    @Test("a 2 MiB leaf split into 4 KiB leaves: the big one is unmapped whole before the small ones map")
    func pageSizeChange() throws {
        let s = try ShadowScenario()
        s.device.map(iova: 0x20_0000, to: 0x4000_0000, pageSize: .size2M)
        s.invalidatePages(0x20_0000, mask: 9)
        #expect(s.take().last == map(0x20_0000, 0x20_0000, to: 0x4000_0000))
        // The guest replaces the 2 MiB leaf by a table holding one 4 KiB page; it invalidates 4 KiB.
        s.device.secondLevel.update(iova: 0x20_0000, level: 2) { _ in 0 }
        s.device.map(iova: 0x20_1000, to: 0x7000)
        s.invalidatePages(0x20_1000)
        #expect(s.take() == [unmap(0x20_0000, 0x20_0000), map(0x20_1000, 0x1000, to: 0x7000)])
        #expect(s.record == s.tables)
    }

    @Test("a context-cache invalidation re-reads the device's tables: moved to new tables, old ones unmapped")
    func contextInvalidation() throws {
        let s = try ShadowScenario()
        s.device.map(iova: 0x1000, to: 0x2000)
        s.invalidatePages(0x1000)
        _ = s.take()
        let moved = s.root.device(domain: 3)
        moved.map(iova: 0x3000, to: 0x4000)
        s.unit.invalidateContextCache(granularity: 3, domain: 3, sourceID: testSourceID)
        #expect(s.take().filter { if case .contextChanged = $0 { false } else { true } }
                == [unmap(0x1000, 0x1000), map(0x3000, 0x1000, to: 0x4000)])
    }

    @Test("translation off unmaps everything; detaching the notifier forgets the record")
    func translationOffAndDetach() throws {
        let s = try ShadowScenario()
        s.device.map(iova: 0x1000, to: 0x2000)
        s.invalidatePages(0x1000)
        _ = s.take()
        s.unit.disableTranslation()
        #expect(s.take().contains(unmap(0x1000, 0x1000)))
        #expect(s.record.isEmpty)
        s.unit.enableTranslation(s.root)
        #expect(s.take().contains(map(0x1000, 0x1000, to: 0x2000)))
        try s.unit.setNotifications(.unmap, sourceID: testRequester, pasid: nil)
        #expect(s.record.isEmpty)
        s.invalidatePages(0x1000)
        #expect(s.take() == [unmap(0x1000, 0x1000)], "an UNMAP-only notifier hears of the range as before")
    }

    @Test("replay starts the record afresh and maps everything; later invalidations send only changes")
    func replayThenIncremental() throws {
        let s = try ShadowScenario()
        s.device.map(iova: 0x1000, to: 0x2000)
        s.device.map(iova: 0x3000, to: 0x4000)
        _ = s.take()
        #expect(s.unit.replay(sourceID: testRequester, pasid: nil) == 2)
        #expect(s.take() == [map(0x1000, 0x1000, to: 0x2000), map(0x3000, 0x1000, to: 0x4000)])
        #expect(s.unit.replay(sourceID: testRequester, pasid: nil) == 2, "the host forgot: map again")
        _ = s.take()
        s.device.map(iova: 0x5000, to: 0x6000)
        s.unit.invalidateIOTLB(granularity: 2, domain: 3)
        #expect(s.take() == [map(0x5000, 0x1000, to: 0x6000)])
    }

    @Test("the walk budget bounds a PSI over self-referencing tables; the record limit bounds MAPs, logged")
    func bounds() throws {
        let s = try ShadowScenario { $0.shadowMappingLimit = 100 }
        for i in UInt64(0)..<150 { s.device.map(iova: i << 12, to: 0x100_0000 + i << 12) }
        _ = s.take()
        s.unit.invalidateIOTLB(granularity: 1)
        #expect(s.take().count == 100)
        #expect(s.record.count == 100)
        #expect(s.guest.logs.contains { $0.0 == .guestError && $0.1.contains("limit") })

        // Tables that point at themselves: the walk stops at the record's limit, not at 512^3 leaves.
        let loop = try ShadowScenario { $0.shadowMappingLimit = 1000 }
        let l3 = loop.device.secondLevel.entryAddress(iova: 0, level: 3) & ~0xFFF
        for i in UInt64(0)..<512 { loop.guest.write64(l3 + i * 8, l3 | 3) }
        loop.unit.invalidateIOTLB(granularity: 1)
        #expect(loop.record.count == 1000)
        var firstLeaves: [Mapping] = []
        loop.unit.forEachMapping(sourceID: testRequester, pasid: nil, budget: 8) { firstLeaves.append($0) }
        #expect(loop.record == Array(firstLeaves.prefix(1000)))
    }

    @Test("a walk out of table-page budget applies what it reached and leaves the rest as it was, logged")
    func budget() throws {
        let s = try ShadowScenario()
        for i in UInt64(0)..<4 { s.device.map(iova: i << 21, to: 0x100_0000 + i << 12) }  // 4 level-1 tables
        s.unit.invalidateIOTLB(granularity: 1)
        #expect(s.record.count == 4)
        for i in UInt64(0)..<4 { s.device.map(iova: i << 21, to: 0x200_0000 + i << 12) }
        _ = s.take()
        // Root, level 3, level 2, the first level-1 table: the second one is out of budget.
        s.unit.resyncShadow(ShadowResyncRequest(sourceID: testRequester, pasid: nil), budget: 4)
        #expect(s.take() == [unmap(0, 0x1000), map(0, 0x1000, to: 0x200_0000)])
        #expect(s.record.map(\.output) == [0x200_0000, 0x100_1000, 0x100_2000, 0x100_3000])
        #expect(s.guest.logs.contains { $0.0 == .guestError && $0.1.contains("stopped after 4 table pages") })
    }

    @Test("first-level PASID entries are not shadowed: the guest does not invalidate after first-level maps")
    func firstLevelNotShadowed() throws {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel.with { $0.cachingMode = true })
        let root = guest.scalableRoot()
        root.device().firstLevel().map(iova: 0x1000, to: 0x2000)
        try unit.setNotifications([.map, .unmap], sourceID: testRequester, pasid: nil)
        unit.enableTranslation(root)
        unit.invalidateIOTLB(granularity: 1)
        #expect(!guest.events.contains { if case .map = $0 { true } else { false } })
        #expect(unit.shadowMappings(sourceID: testRequester, pasid: nil).isEmpty)
    }

    @Test("scalable second level: PASID-based IOTLB and PASID-cache invalidations re-sync RID_PASID")
    func scalableSecondLevel() throws {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableSecondLevel.with { $0.cachingMode = true })
        let root = guest.scalableRoot()
        let tables = root.device().secondLevel(domain: 5)
        try unit.setNotifications([.map, .unmap], sourceID: testRequester, pasid: nil)
        unit.enableTranslation(root)
        tables.map(iova: 0x1000, to: 0x2000)
        var effects = Effects()
        unit.state.withLock {
            $0.invalidateIOTLB(.pasidPages(domain: 5, pasid: 0, address: 0x1000, addressMask: 0, leafOnly: false),
                               effects: &effects)
        }
        unit.perform(&effects)
        #expect(unit.shadowMappings(sourceID: testRequester, pasid: nil)
                == [Mapping(iova: 0x1000, pageShift: 12, output: 0x2000, permissions: .readWrite)])
        tables.update(iova: 0x1000, level: 1) { _ in 0 }
        effects = Effects()
        unit.state.withLock { $0.invalidatePASIDCache(.pasid(domain: 5, pasid: 0), effects: &effects) }
        unit.perform(&effects)
        #expect(unit.shadowMappings(sourceID: testRequester, pasid: nil).isEmpty)
        #expect(guest.events.contains(.unmap(sid: testRequester, pasid: nil, address: 0x1000, size: 0x1000)))
    }

    @Test("differential: after every invalidation of random edits the record equals a full walk, and the events replay to it")
    func differential() throws {
        var rng = SplitMix64(state: 0x5EED_CAFE)
        let s = try ShadowScenario()
        var host: [UInt64: PlatformEvent] = [:]  // what the events built: iova → MAP
        for step in 0..<400 {
            let iova = (rng.next() % 64) << 12 | (rng.next() % 2) << 21
            switch rng.next() % 4 {
            case 0, 1: s.device.map(iova: iova, to: (rng.next() % 1024) << 12,
                                    permissions: rng.next() % 3 == 0 ? .read : .readWrite)
            case 2: s.unmap(iova: iova)
            default: break
            }
            if step % 7 == 0 {
                s.unit.invalidateIOTLB(granularity: 2, domain: 3)
            } else {
                s.invalidatePages(iova)
            }
            for event in s.take() {
                switch event {
                case let .map(_, _, address, _, _, _):
                    #expect(host[address] == nil, "mapped twice at 0x\(String(address, radix: 16))")
                    host[address] = event
                case let .unmap(_, _, address, size):
                    #expect(host.removeValue(forKey: address) != nil && size == 0x1000, "unmap of what was not mapped")
                default: break
                }
            }
            // Every edit was invalidated: the host's view is the tables'.
            #expect(s.record == s.tables, "step \(step)")
            #expect(host.count == s.record.count)
        }
    }
}
