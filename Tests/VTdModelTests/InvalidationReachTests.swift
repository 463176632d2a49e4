// An invalidation whose wait descriptor completed leaves no translation it covers usable: the
// two ways a guest could keep one (issue 11, items 1 and 2), driven through the queue as Linux
// drives it.

import Testing
@testable import VTdModel

@Suite("Invalidation reaches every translation it covers (VT-d 6.5.2.2, 6.5.2.4, 3.8)")
struct InvalidationReachTests {
    @Test("P_IOTLB with AM above CAP.MAMV (a 6.12 strict-mode unmap of 2 GiB: AM 19) invalidates the whole PASID, no IQE (spec 6.5.2.4; Linux cache_tag_flush_range)")
    func pasidIOTLBMaskAboveMAMV() throws {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel(domain: 3)
        let other = root.device(0x0018).firstLevel(domain: 4)
        unit.enableTranslation(root)
        let queue = GuestQueue(unit, guest: guest)
        try unit.setNotifications(.unmap, sourceID: testRequester, pasid: nil)
        #expect(Capability(rawValue: unit.mmioRead(offset: Reg.capability, width: 8)).maximumAddressMaskValue == 18)

        let iova: UInt64 = 0x8000_0000 + 0x1234_5000
        tables.mapLikeLinux(iova: iova, to: 0x5_0000_0000)
        other.mapLikeLinux(iova: iova, to: 0x6_0000_0000)
        #expect(unit.translate(.read(iova)).address == 0x5_0000_0000)
        #expect(unit.translate(.read(iova, sid: 0x0018)).address == 0x6_0000_0000)

        // The driver clears the 2 GiB range and flushes it: qi_flush_piotlb with
        // AM = ilog2(roundup_pow_of_two(npages)) = 19, then a wait.
        tables.update(iova: iova, level: 1) { _ in 0 }
        #expect(queue.flush(Desc.pasidIOTLBPages(3, pasid: 0, 0x8000_0000, am: 19, ih: false)))
        #expect(!queue.queueError)
        #expect(unit.translate(.read(iova)).faultReason == .flEntryNotPresent)
        // Another domain keeps its translation; the UNMAP listener hears of the whole space.
        #expect(unit.translate(.read(iova, sid: 0x0018)).address == 0x6_0000_0000)
        #expect(guest.events.contains(.unmap(sid: testRequester, pasid: nil, address: 0, size: .max)))
    }

    @Test("nested: a page-selective IOTLB invalidation of the second stage (guest-physical page, nested DID) ends the domain's nested translations (spec 6.5.2.2, 3.8; Linux nested.c)")
    func nestedSecondStagePageSelective() throws {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableNested)
        let root = guest.scalableRoot()
        let tables = root.device().nested(domain: 7)
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        unit.enableTranslation(root)
        let queue = GuestQueue(unit, guest: guest)
        try unit.setNotifications(.unmap, sourceID: testRequester, pasid: nil)
        #expect(unit.translate(.read(0x1000)).address == 0x3_0000)
        #expect(unit.translate(.read(0x1000)).address == 0x3_0000)  // an IOTLB hit

        // The nest parent moves the guest-physical page; the first stage is unchanged. Linux
        // flushes the parent with a type-2 PSI carrying the GPA and the nested domain's DID.
        tables.secondLevel.map(iova: 0x8_0000, to: 0x5_0000)
        #expect(queue.flush(Desc.iotlbPages(7, 0x8_0000, am: 0)))
        #expect(unit.translate(.read(0x1000)).address == 0x5_0000)
        // The host cached the translation by its first-stage address: it must drop everything.
        #expect(guest.events.contains(.unmap(sid: testRequester, pasid: nil, address: 0, size: .max)))
    }

    @Test("nested: a domain-selective IOTLB invalidation also ends the domain's nested translations (spec 6.5.2.2)")
    func nestedSecondStageDomainSelective() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableNested)
        let root = guest.scalableRoot()
        let tables = root.device().nested(domain: 7)
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        unit.enableTranslation(root)
        let queue = GuestQueue(unit, guest: guest)
        #expect(unit.translate(.read(0x1000)).address == 0x3_0000)
        tables.secondLevel.map(iova: 0x8_0000, to: 0x5_0000)
        #expect(queue.flush(Desc.iotlbDomain(7)))
        #expect(unit.translate(.read(0x1000)).address == 0x5_0000)
    }

    @Test("a second-stage PSI of a domain without nested translations stays page-exact for UNMAP listeners (spec 6.5.2.2)")
    func secondLevelPageSelectiveStaysExact() throws {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableNested)
        let root = guest.scalableRoot()
        let tables = root.device().secondLevel(domain: 2)
        tables.map(iova: 0x8_0000, to: 0x3_0000)
        unit.enableTranslation(root)
        let queue = GuestQueue(unit, guest: guest)
        try unit.setNotifications(.unmap, sourceID: testRequester, pasid: nil)
        #expect(unit.translate(.read(0x8_0000)).address == 0x3_0000)
        #expect(queue.flush(Desc.iotlbPages(2, 0x8_0000, am: 0)))
        #expect(guest.events.contains(.unmap(sid: testRequester, pasid: nil, address: 0x8_0000, size: 0x1000)))
        #expect(!guest.events.contains(.unmap(sid: testRequester, pasid: nil, address: 0, size: .max)))
    }
}
