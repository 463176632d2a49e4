// Queued invalidation on a unit whose platform is a GuestMemory (the guest the table builders
// write into): one ring page and one status page from the guest, and descriptors sent the way a
// strict-mode driver sends them, each batch closed by a wait descriptor with a status write.

@testable import VTdModel

final class GuestQueue {
    let guest: GuestMemory
    let unit: VTdUnit
    let base: UInt64
    let statusAddress: UInt64
    let wide: Bool
    private var tail = 0
    private var waits: UInt32 = 0
    private var entries: Int { wide ? 128 : 256 }

    /// IQA (DW when `wide`), then GCMD.QIE keeping what is already on (TE), as a driver does.
    init(_ unit: VTdUnit, guest: GuestMemory, wide: Bool = true) {
        self.guest = guest
        self.unit = unit
        self.wide = wide
        base = guest.allocatePage()
        statusAddress = guest.allocatePage()
        unit.mmioWrite(offset: Reg.invalidationQueueAddress, value: base | (wide ? 1 << 11 : 0), width: 8)
        let status = UInt32(truncatingIfNeeded: unit.mmioRead(offset: Reg.globalStatus, width: 4))
        let persistent = status & ~(GlobalCommand.setRootTablePointer.rawValue
                                    | GlobalCommand.setInterruptRemappingTablePointer.rawValue)
        unit.mmioWrite(offset: Reg.globalCommand,
                       value: UInt64(persistent | GlobalCommand.queuedInvalidationEnable.rawValue), width: 4)
    }

    /// Sends `descriptors` and a wait with a status write; true when the wait completed (its
    /// status reached memory), which is when a driver considers the invalidation done.
    @discardableResult
    func flush(_ descriptors: InvalidationDescriptor...) -> Bool {
        waits &+= 1
        for d in descriptors + [Desc.wait(status: waits, at: statusAddress)] {
            let slot = base + UInt64(tail * (wide ? 32 : 16))
            guest.write64(slot, d.words.0)
            guest.write64(slot + 8, d.words.1)
            if wide {
                guest.write64(slot + 16, d.words.2)
                guest.write64(slot + 24, d.words.3)
            }
            tail = (tail + 1) % entries
        }
        unit.mmioWrite(offset: Reg.invalidationQueueTail, value: UInt64(tail) << (wide ? 5 : 4), width: 8)
        return UInt32(truncatingIfNeeded: guest.read64(statusAddress)) == waits
    }

    var queueError: Bool { unit.faultStatus.contains(.invalidationQueueError) }
}
