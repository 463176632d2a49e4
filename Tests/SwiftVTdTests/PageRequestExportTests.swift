import CSwiftVTd
import Testing
@testable import SwiftVTd
@testable import VTdModel

@Suite("C ABI page requests")
struct PageRequestExportTests {
    func makePRIUnit(_ guest: CGuest) -> OpaquePointer {
        let handle = guest.makeUnit { cfg in
            cfg.scalable_mode = 1
            cfg.pasid = 1
            cfg.page_requests = 1
        }
        // A one-page queue at 0x40000 with head and tail at slot 1, and the event unmasked.
        swiftvtd_mmio_write(handle, UInt64(Reg.pageRequestQueueHead), 32, 8)
        swiftvtd_mmio_write(handle, UInt64(Reg.pageRequestQueueTail), 32, 8)
        swiftvtd_mmio_write(handle, UInt64(Reg.pageRequestQueueAddress), 0x40000, 8)
        swiftvtd_mmio_write(handle, UInt64(Reg.pageRequestEventData), 0x51, 4)
        swiftvtd_mmio_write(handle, UInt64(Reg.pageRequestEventAddress), 0xFEE0_0000, 4)
        swiftvtd_mmio_write(handle, UInt64(Reg.pageRequestEventControl), 0, 4)
        return handle
    }

    func request(addr: UInt64, prg: UInt16, flags: UInt32, pasid: UInt32 = 5) -> swiftvtd_pri_request {
        swiftvtd_pri_request(size: UInt32(MemoryLayout<swiftvtd_pri_request>.size), sid: 0x0208, prg_index: prg,
                             pasid: pasid, flags: flags, addr: addr)
    }

    @Test("a page request is queued as a descriptor in guest memory and raises the page request event")
    func queued() {
        let guest = CGuest()
        let handle = makePRIUnit(guest)
        defer { swiftvtd_destroy(handle) }
        var r = request(addr: 0x1234_5000, prg: 3, flags: SWIFTVTD_PRQ_READ | SWIFTVTD_PRQ_WRITE | SWIFTVTD_PRQ_LAST)
        #expect(swiftvtd_page_request(handle, &r) == Int32(SWIFTVTD_PRQ_QUEUED.rawValue))
        let base = 0x40000 + 32
        let qw0 = (0..<8).reduce(UInt64(0)) { $0 | UInt64(guest.ram[base + $1]) << UInt64(8 * $1) }
        let qw1 = (0..<8).reduce(UInt64(0)) { $0 | UInt64(guest.ram[base + 8 + $1]) << UInt64(8 * $1) }
        #expect(qw0 == 0x01 | 1 << 8 | 0x0208 << 16 | 5 << 32)
        #expect(qw1 == 0x1234_5000 | 3 << 3 | 0b111)
        #expect(guest.msis.count == 1 && guest.msis.first?.0 == 0xFEE0_0000 && guest.msis.first?.1 == 0x51)
    }

    @Test("an overflowed request ending its group is answered through the event callback")
    func overflowAnswered() {
        let guest = CGuest()
        let handle = makePRIUnit(guest)
        defer { swiftvtd_destroy(handle) }
        // PRO as an earlier overflow left it (its event went out then, not here).
        withHandle(handle) { $0.unit }.state.withLock {
            var event = Effects()
            $0.pageRequests.signal(overflowed: true, effects: &event)
        }
        var r = request(addr: 0x1000, prg: 0x1F0, flags: SWIFTVTD_PRQ_READ | SWIFTVTD_PRQ_LAST)
        #expect(swiftvtd_page_request(handle, &r) == Int32(SWIFTVTD_PRQ_DROPPED.rawValue))
        #expect(guest.events.count == 1)
        let e = guest.events[0]
        #expect(e.kind == SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE.rawValue)
        #expect(e.sid == 0x0208 && e.pasid == 5 && e.data == 0x1F0 && e.perm == 0)
    }

    @Test("bad sizes, flags and units without page requests are errors")
    func errors() {
        let guest = CGuest()
        let handle = makePRIUnit(guest)
        defer { swiftvtd_destroy(handle) }
        var r = request(addr: 0x1000, prg: 1, flags: 0x100)
        #expect(swiftvtd_page_request(handle, &r) == SWIFTVTD_EINVAL.rawValue)
        r = request(addr: 0x1000, prg: 600, flags: SWIFTVTD_PRQ_READ)
        #expect(swiftvtd_page_request(handle, &r) == SWIFTVTD_EINVAL.rawValue)
        r = request(addr: 0x1000, prg: 1, flags: SWIFTVTD_PRQ_EXEC, pasid: SWIFTVTD_NO_PASID)
        #expect(swiftvtd_page_request(handle, &r) == SWIFTVTD_EINVAL.rawValue)
        r.size = 16
        #expect(swiftvtd_page_request(handle, &r) == SWIFTVTD_EVERSION.rawValue)

        let plain = guest.makeUnit()
        defer { swiftvtd_destroy(plain) }
        r = request(addr: 0x1000, prg: 1, flags: SWIFTVTD_PRQ_READ)
        #expect(swiftvtd_page_request(plain, &r) == SWIFTVTD_EUNSUPPORTED.rawValue)
    }
}
