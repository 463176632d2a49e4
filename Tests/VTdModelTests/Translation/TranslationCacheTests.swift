import Testing
@testable import VTdModel

@Suite("Translation: context and PASID-entry caches (VT-d 6.2.1, 6.5)")
struct TranslationCacheTests {
    @Test("context and PASID entries are read once, then served from the caches")
    func cachedEntriesAreNotReread() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel()
        tables.mapLikeLinux(iova: 0x1000, to: 0x2000)
        tables.mapLikeLinux(iova: 0x5000, to: 0x6000)
        unit.enableTranslation(root)
        var reads = guest.readCount
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
        // Root, context, directory, PASID entry, four first-level entries.
        #expect(guest.readCount - reads == 8)
        reads = guest.readCount
        #expect(unit.translate(.read(0x5000)).address == 0x6000)
        #expect(guest.readCount - reads == 4)
        reads = guest.readCount
        #expect(unit.translate(.read(0x5000)).address == 0x6000)
        #expect(guest.readCount - reads == 0, "IOTLB hit")
    }

    @Test("entries that are not present are never cached: fixing one needs no invalidation")
    func notPresentNotCached() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, pasid: 5)).faultReason == .pasidDirectoryEntryNotPresent)
        device.firstLevel(pasid: 5).map(iova: 0x1000, to: 0x2000)
        #expect(unit.translate(.read(0x1000, pasid: 5)).address == 0x2000)
        #expect(unit.translate(.read(0x1000, sid: 0x0011)).faultReason == .smContextEntryNotPresent)
        root.device(0x0011).firstLevel().map(iova: 0x1000, to: 0x3000)
        #expect(unit.translate(.read(0x1000, sid: 0x0011)).address == 0x3000)
    }

    @Test("a changed context entry is seen after a context-cache invalidation, not before")
    func contextInvalidation() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device(domain: 3).map(iova: 0x1000, to: 0x2000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
        // The driver moves the device to another domain's tables.
        root.device(domain: 4).map(iova: 0x5000, to: 0x9000)
        #expect(unit.translate(.read(0x5000)).faultReason == .readDenied, "still the cached context entry")
        unit.invalidateContextCache(granularity: 3, domain: 3, sourceID: testSourceID)
        #expect(unit.translate(.read(0x5000)).address == 0x9000)
    }

    @Test("a device-selective context invalidation with FM 1 reaches function 5 from function 1, not function 0 (6.5.2.1)")
    func contextInvalidationFunctionMask() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let (f0, f1, f5): (UInt16, UInt16, UInt16) = (0x0100, 0x0101, 0x0105)
        root.device(f0, domain: 3).map(iova: 0x1000, to: 0x2000)
        root.device(f5, domain: 3).map(iova: 0x1000, to: 0x2000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, sid: RequesterID(rawValue: f0))).address == 0x2000)
        #expect(unit.translate(.read(0x1000, sid: RequesterID(rawValue: f5))).address == 0x2000)
        // Both functions move to other tables; the caches still hold the old context entries.
        root.device(f0, domain: 4).map(iova: 0x5000, to: 0x9000)
        root.device(f5, domain: 4).map(iova: 0x5000, to: 0x9000)
        unit.invalidateContextCache(granularity: 3, domain: 3, sourceID: f1, functionMask: 1)
        #expect(unit.translate(.read(0x5000, sid: RequesterID(rawValue: f5))).address == 0x9000, "FM 1 ignores function bit 2: 1 and 5 match")
        #expect(unit.translate(.read(0x5000, sid: RequesterID(rawValue: f0))).faultReason == .readDenied, "function 0 is not covered")
    }

    @Test("a changed PASID entry is seen after a PASID-cache invalidation of its PASID")
    func pasidInvalidation() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        device.firstLevel(pasid: 7, domain: 2).map(iova: 0x1000, to: 0x2000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, pasid: 7)).address == 0x2000)
        device.firstLevel(pasid: 7, domain: 2).map(iova: 0x5000, to: 0x9000)
        #expect(unit.translate(.read(0x5000, pasid: 7)).faultReason == .flEntryNotPresent)
        unit.invalidatePASIDCache(.pasid(domain: 9, pasid: 7))
        #expect(unit.translate(.read(0x5000, pasid: 7)).faultReason == .flEntryNotPresent, "other domain")
        unit.invalidatePASIDCache(.pasid(domain: 2, pasid: 7))
        #expect(unit.translate(.read(0x5000, pasid: 7)).address == 0x9000)
    }

    @Test("a walk that overlaps an invalidation does not fill any cache with what it read")
    func walkRacingInvalidation() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device()
        device.map(iova: 0x1000, to: 0x2000)
        unit.enableTranslation(root)
        // While the walk reads the leaf, the driver invalidates everything.
        guest.whenRead(device.secondLevel.entryAddress(iova: 0x1000, level: 1)) {
            unit.invalidateContextCache()
            unit.invalidateIOTLB()
        }
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
        let reads = guest.readCount
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
        // Nothing was cached: root, context and four table entries again.
        #expect(guest.readCount - reads == 6)
    }

    @Test("after SRTP with a new root table, entries cached under the old one never hit")
    func newRootTable() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let first = guest.legacyRoot()
        first.device().map(iova: 0x1000, to: 0x2000)
        unit.enableTranslation(first)
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
        let second = guest.legacyRoot()
        second.device().map(iova: 0x3000, to: 0x4000)
        unit.enableTranslation(second)
        #expect(unit.translate(.read(0x3000)).address == 0x4000)
    }

    @Test("device-selective invalidation with a function mask covers the masked functions")
    func functionMask() {
        var cache = ContextCache()
        let root = RootTablePointer(address: 0x1000, mode: .legacy)
        let entry = CachedContext.legacy(ContextEntry(lo: 0x5001, hi: 0x102))
        for sid in UInt16(0x10)...0x17 { cache.insert(sourceID: RequesterID(rawValue: sid), root: root, context: entry) }
        // FM 2: ignore function bits 2:1 -> functions 0, 2, 4, 6 of device 2.
        cache.invalidate(.device(sourceID: 0x12, functionMask: 2, domain: 1))
        let kept = (UInt16(0x10)...0x17).filter { cache.lookup(sourceID: RequesterID(rawValue: $0), root: root) != nil }
        #expect(kept == [0x11, 0x13, 0x15, 0x17])
    }

    @Test("domain-selective invalidation drops that domain's legacy entries and every scalable entry")
    func domainSelective() {
        var cache = ContextCache()
        let legacy = RootTablePointer(address: 0x1000, mode: .legacy)
        let scalable = RootTablePointer(address: 0x2000, mode: .scalable)
        cache.insert(sourceID: 1, root: legacy, context: .legacy(ContextEntry(lo: 0x5001, hi: 0x102)))
        cache.insert(sourceID: 2, root: legacy, context: .legacy(ContextEntry(lo: 0x5001, hi: 0x202)))
        cache.insert(sourceID: 3, root: scalable, context: .scalable(ScalableContextEntry(0x6001, 0)))
        cache.invalidate(.domain(1))
        #expect(cache.lookup(sourceID: 1, root: legacy) == nil)
        #expect(cache.lookup(sourceID: 2, root: legacy) != nil)
        #expect(cache.lookup(sourceID: 3, root: scalable) == nil)
    }

    @Test("PASID-cache scopes: global, domain, (domain, PASID)")
    func pasidScopes() {
        var cache = PASIDCache()
        func entry(_ sid: RequesterID, _ pasid: PASID, domain: UInt64) -> CachedPASIDEntry {
            CachedPASIDEntry(sourceID: sid, pasid: pasid, directory: 0x9000, directoryFaultProcessingDisabled: false,
                             entry: PASIDEntry(1 | 1 << 6, domain))
        }
        for e in [entry(1, 1, domain: 5), entry(1, 2, domain: 5), entry(2, 1, domain: 6)] { cache.insert(e) }
        cache.invalidate(.pasid(domain: 5, pasid: 1))
        #expect(cache.lookup(sourceID: 1, pasid: 1, directory: 0x9000) == nil)
        #expect(cache.lookup(sourceID: 1, pasid: 2, directory: 0x9000) != nil)
        cache.invalidate(.domain(5))
        #expect(cache.lookup(sourceID: 1, pasid: 2, directory: 0x9000) == nil)
        #expect(cache.lookup(sourceID: 2, pasid: 1, directory: 0x9000) != nil)
        #expect(cache.lookup(sourceID: 2, pasid: 1, directory: 0xA000) == nil, "other directory")
        cache.invalidate(.global)
        #expect(cache.lookup(sourceID: 2, pasid: 1, directory: 0x9000) == nil)
    }
}
