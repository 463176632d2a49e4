import Testing
@testable import VTdModel

/// A translation of `iova` for device `sid` in `domain`, mapped to `iova + 0x1_0000_0000`.
private func entry(sid: RequesterID = 0x0010, domain: DomainID = 1, pasid: PASID? = nil, effectivePASID: PASID?? = .none,
                   iova: UInt64, shift: UInt8 = 12, permissions: Permissions = .readWrite,
                   privileged: Bool = false) -> IOTLBEntry {
    let page = iova & ~((1 << UInt64(shift)) - 1)
    return IOTLBEntry(domainID: domain, sourceID: sid, pasid: pasid, effectivePASID: effectivePASID ?? pasid,
                      privileged: privileged, inputPage: page, outputPage: page + 0x1_0000_0000,
                      pageShift: shift, permissions: permissions)
}

@Suite("IOTLB")
struct IOTLBTests {
    @Test("a cached 4 KiB translation hits anywhere in its page and nowhere else (6.2.2)")
    func hit4K() {
        let tlb = IOTLB(capacity: 256)
        let e = entry(iova: 0xFFFF_E000, permissions: .read)
        tlb.insert(e)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0xFFFF_E000) == e)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0xFFFF_EFFF) == e)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0xFFFF_F000) == nil)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0xFFFF_DFFF) == nil)
    }

    @Test("2 MiB and 1 GiB translations hit across their whole page (6.2.2)")
    func largePages() {
        let tlb = IOTLB(capacity: 256)
        let twoMeg = entry(iova: 0x4020_0000, shift: 21)
        let oneGig = entry(iova: 0x8000_0000, shift: 30)
        tlb.insert(twoMeg)
        tlb.insert(oneGig)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x4020_0000) == twoMeg)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x403F_FFFF) == twoMeg)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x4040_0000) == nil)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x8000_0000) == oneGig)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0xBFFF_FFFF) == oneGig)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0xC000_0000) == nil)
    }

    @Test("source-id, PASID and privilege are part of the key (6.2.2)")
    func keyedByRequester() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(sid: 0x0010, iova: 0x1000))
        tlb.insert(entry(sid: 0x0018, pasid: 5, iova: 0x1000, privileged: true))
        #expect(tlb.lookup(sourceID: 0x0011, pasid: nil, address: 0x1000) == nil)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: 0, address: 0x1000) == nil)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x1000, privileged: true) == nil)
        #expect(tlb.lookup(sourceID: 0x0018, pasid: 5, address: 0x1000) == nil)
        #expect(tlb.lookup(sourceID: 0x0018, pasid: 5, address: 0x1000, privileged: true)?.pasid == 5)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x1000)?.sourceID == 0x0010)
    }

    @Test("inserting the same key again replaces the translation")
    func replace() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(iova: 0x7000, permissions: .read))
        var newer = entry(iova: 0x7000, permissions: .readWrite)
        newer.outputPage = 0x5555_5000
        tlb.insert(newer)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x7000) == newer)
        #expect(tlb.count == 1)
    }

    @Test("global invalidation drops every entry (6.5.2.3)")
    func global() {
        let tlb = IOTLB(capacity: 256)
        for i in 0..<50 { tlb.insert(entry(domain: DomainID(rawValue: UInt16(i % 5)), iova: UInt64(i) << 12)) }
        #expect(tlb.count == 50)
        tlb.invalidate(.global)
        #expect(tlb.count == 0)
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x3000) == nil)
        // Entries cached after the invalidation are live again.
        tlb.insert(entry(iova: 0x3000))
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x3000) != nil)
    }

    @Test("domain-selective invalidation drops that domain only (6.5.2.3)")
    func domainSelective() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(sid: 0x10, domain: 1, iova: 0x1000))
        tlb.insert(entry(sid: 0x10, domain: 1, pasid: 3, iova: 0x2000, shift: 21))
        tlb.insert(entry(sid: 0x20, domain: 2, iova: 0x1000))
        tlb.invalidate(.domain(1))
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x1000) == nil)
        #expect(tlb.lookup(sourceID: 0x10, pasid: 3, address: 0x2000) == nil)
        #expect(tlb.lookup(sourceID: 0x20, pasid: nil, address: 0x1000)?.domainID == 2)
    }

    @Test("page-selective invalidation drops overlapping pages of the domain, any size (6.5.2.3)")
    func pageSelective() {
        let tlb = IOTLB(capacity: 1024)
        tlb.insert(entry(domain: 1, iova: 0x10_0000))          // 4K inside the range
        tlb.insert(entry(domain: 1, iova: 0x10_3000))          // 4K inside (AM 2: 4 pages)
        tlb.insert(entry(domain: 1, iova: 0x10_4000))          // 4K just after
        tlb.insert(entry(domain: 1, iova: 0x0, shift: 21))     // 2M page containing the range
        tlb.insert(entry(domain: 2, iova: 0x10_1000))          // other domain
        // Address bits below the mask are ignored: 0x10_2000 with AM 2 means 0x10_0000..0x10_3FFF.
        tlb.invalidate(.pages(domain: 1, address: 0x10_2000, addressMask: 2, leafOnly: true))
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x10_0000) == nil)
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x10_3000) == nil)
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x10_4000)?.pageShift == 12)
        #expect(tlb.entries.contains { $0.pageShift == 21 } == false)
        #expect(tlb.entries.contains { $0.domainID == 2 && $0.inputPage == 0x10_1000 })
    }

    @Test("page-selective invalidation of a 1 GiB page through one 4 KiB address (6.5.2.3)")
    func pageSelectiveHitsHugePage() {
        let tlb = IOTLB(capacity: 1024)
        tlb.insert(entry(domain: 7, iova: 0x4000_0000, shift: 30))
        tlb.invalidate(.pages(domain: 7, address: 0x7FFF_F000, addressMask: 0, leafOnly: false))
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x4000_0000) == nil)
    }

    @Test("a wide page-selective range (scan path) drops exactly the covered entries (6.5.2.3)")
    func pageSelectiveWide() {
        let tlb = IOTLB(capacity: 4096)
        for i in 0..<600 { tlb.insert(entry(domain: 3, iova: UInt64(i) << 12)) }
        // AM 9: 512 pages from 0 — more sets than the probe limit, so the table is scanned.
        tlb.invalidate(.pages(domain: 3, address: 0, addressMask: 9, leafOnly: false))
        let left = tlb.entries.map(\.inputPage).sorted()
        #expect(left == (512..<600).map { UInt64($0) << 12 })
    }

    @Test("an address mask past the address width invalidates the whole domain")
    func pageSelectiveHugeMask() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(domain: 3, iova: 0xFFFF_FFFF_F000))
        tlb.insert(entry(domain: 4, iova: 0xFFFF_FFFF_F000, privileged: true))
        tlb.invalidate(.pages(domain: 3, address: 0, addressMask: 63, leafOnly: false))
        #expect(tlb.entries.map(\.domainID) == [4])
    }

    @Test("PASID-selective invalidation drops (domain, PASID) only, including RID_PASID of requests without PASID (6.5.2.4)")
    func pasidSelective() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(sid: 0x10, domain: 1, pasid: nil, effectivePASID: 0, iova: 0x1000))
        tlb.insert(entry(sid: 0x10, domain: 1, pasid: 9, iova: 0x1000))
        tlb.insert(entry(sid: 0x18, domain: 2, pasid: nil, effectivePASID: 0, iova: 0x1000))
        tlb.invalidate(.pasid(domain: 1, pasid: 0))
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x1000) == nil)
        #expect(tlb.lookup(sourceID: 0x10, pasid: 9, address: 0x1000) != nil)
        #expect(tlb.lookup(sourceID: 0x18, pasid: nil, address: 0x1000) != nil)
    }

    @Test("PASID-based page-selective invalidation matches domain, PASID and range (6.5.2.4)")
    func pasidPageSelective() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(sid: 0x10, domain: 1, pasid: nil, effectivePASID: 0, iova: 0x5000))
        tlb.insert(entry(sid: 0x10, domain: 1, pasid: 9, iova: 0x5000))
        tlb.insert(entry(sid: 0x10, domain: 1, pasid: nil, effectivePASID: 0, iova: 0x6000))
        tlb.invalidate(.pasidPages(domain: 1, pasid: 0, address: 0x5000, addressMask: 0, leafOnly: true))
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x5000) == nil)
        #expect(tlb.lookup(sourceID: 0x10, pasid: 9, address: 0x5000) != nil)
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0x6000) != nil)
    }

    @Test("capacity is the configured size rounded down to whole sets, never above it")
    func capacityBounds() {
        #expect(IOTLB(capacity: 4096).capacity == 4096)
        #expect(IOTLB(capacity: 16).capacity == 16)
        let odd = IOTLB(capacity: 100)
        #expect(odd.capacity <= 100 && odd.capacity > 50)
    }

    @Test("a full cache evicts one entry at a time and never holds more than its capacity")
    func fullCacheEvicts() {
        let tlb = IOTLB(capacity: 64)
        for i in 0..<1000 {
            tlb.insert(entry(sid: RequesterID(rawValue: UInt16(i % 7)), domain: DomainID(rawValue: UInt16(i % 3)), iova: UInt64(i) << 12))
            #expect(tlb.count <= 64)
        }
        // Full, not flushed: most ways are live and the newest entry is always there.
        #expect(tlb.count > 48)
        #expect(tlb.lookup(sourceID: RequesterID(rawValue: UInt16(999 % 7)), pasid: nil, address: 999 << 12) != nil)
    }

    @Test("second chance: an entry in use survives a stream of one-off translations")
    func secondChance() {
        let tlb = IOTLB(capacity: 16)
        let hot = entry(sid: 0x42, iova: 0xABC_D000)
        tlb.insert(hot)
        for i in 0..<500 {
            #expect(tlb.lookup(sourceID: 0x42, pasid: nil, address: 0xABC_D000) == hot)
            tlb.insert(entry(iova: UInt64(i + 1) << 12))
        }
        #expect(tlb.lookup(sourceID: 0x42, pasid: nil, address: 0xABC_D000) == hot)
    }

    @Test("ways freed by invalidation are reused before live entries are evicted")
    func deadWaysReused() {
        let tlb = IOTLB(capacity: 16)
        for i in 0..<16 { tlb.insert(entry(sid: 0x10, domain: 1, iova: UInt64(i) << 12)) }
        tlb.insert(entry(sid: 0x30, domain: 3, iova: 0x7777_7000))
        let deadPages = tlb.entries.filter { $0.domainID == 1 }.map(\.inputPage)
        tlb.invalidate(.domain(1))
        // The same pages for another device land in the same sets, one dead way each.
        for page in deadPages { tlb.insert(entry(sid: 0x20, domain: 2, iova: page)) }
        #expect(tlb.lookup(sourceID: 0x30, pasid: nil, address: 0x7777_7000) != nil)
        #expect(tlb.count == deadPages.count + 1)
    }

    @Test("a second-stage page-selective invalidation ends a nested entry inserted after earlier ones found none, and again after removeAll (6.5.2.3)")
    func nestedEntriesAfterPageSelectiveWithoutThem() {
        let tlb = IOTLB(capacity: 256)
        tlb.insert(entry(iova: 0x1000))
        // No nested entry yet: nothing nested to end, the plain entry of the page goes.
        tlb.invalidate(.pages(domain: 1, address: 0x1000, addressMask: 0, leafOnly: false))
        #expect(tlb.lookup(sourceID: 0x0010, pasid: nil, address: 0x1000) == nil)
        for round in 0..<2 {
            var nested = entry(pasid: 3, iova: 0x4000_0000)
            nested.nested = true
            tlb.insert(nested)
            #expect(tlb.lookup(sourceID: 0x0010, pasid: 3, address: 0x4000_0000) == nested, "round \(round)")
            // The invalidation names a guest-physical page the first-stage input never equals:
            // the nested entry still goes (any second-stage page may have been in its walk).
            tlb.invalidate(.pages(domain: 1, address: 0x9000, addressMask: 0, leafOnly: false))
            #expect(tlb.lookup(sourceID: 0x0010, pasid: 3, address: 0x4000_0000) == nil, "round \(round)")
            tlb.removeAll()
        }
    }

    @Test("removeAll empties the cache")
    func removeAll() {
        let tlb = IOTLB(capacity: 64)
        for i in 0..<20 { tlb.insert(entry(iova: UInt64(i) << 21, shift: 21)) }
        tlb.removeAll()
        #expect(tlb.count == 0)
        #expect(tlb.lookup(sourceID: 0x10, pasid: nil, address: 0) == nil)
    }
}
