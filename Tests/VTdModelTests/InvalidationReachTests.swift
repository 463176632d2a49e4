// An invalidation whose wait descriptor completed leaves no translation it covers usable,
// driven through the queue as Linux drives it.

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
        try unit.setNotifications(.unmap, sourceID: testSourceID, pasid: nil)
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
        #expect(guest.events.contains(.unmap(sid: testSourceID, pasid: nil, address: 0, size: .max)))
    }
}
