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
    func flush(_ descriptors: InvalidationDescriptor...) -> Bool { flush(descriptors) }

    @discardableResult
    func flush(_ descriptors: [InvalidationDescriptor]) -> Bool {
        waits &+= 1
        submit(descriptors + [Desc.wait(status: waits, at: statusAddress)])
        return UInt32(truncatingIfNeeded: guest.read64(statusAddress)) == waits
    }

    /// Places `descriptors` in the ring and moves IQT: the unit has run them when this returns.
    func submit(_ descriptors: [InvalidationDescriptor]) {
        for d in descriptors {
            guest.writeDescriptor(d, at: base + UInt64(tail * (wide ? 32 : 16)), wide: wide)
            tail = (tail + 1) % entries
        }
        unit.mmioWrite(offset: Reg.invalidationQueueTail, value: tailRegister, width: 8)
    }

    /// IQT as written last: IQH reads the same once the unit ran everything submitted.
    var tailRegister: UInt64 { UInt64(tail) << (wide ? 5 : 4) }

    var queueError: Bool { unit.faultStatus.contains(.invalidationQueueError) }
}

extension Platform {
    /// One descriptor into a queue slot: all four words in a 256-bit queue, the first two otherwise.
    func writeDescriptor(_ d: InvalidationDescriptor, at slot: UInt64, wide: Bool) {
        var words = (d.words.0.littleEndian, d.words.1.littleEndian, d.words.2.littleEndian, d.words.3.littleEndian)
        let written = withUnsafeBytes(of: &words) { writeGuest(slot, from: UnsafeRawBufferPointer(rebasing: $0.prefix(wide ? 32 : 16))) }
        precondition(written, "queue slot 0x\(String(slot, radix: 16)) is outside guest memory")
    }
}
