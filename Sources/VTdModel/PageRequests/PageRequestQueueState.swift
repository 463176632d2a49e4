// The page request queue as a part of the unit's state (VT-d spec 7.5, 11.4.10): it owns PQH,
// PQT, PQA, PRS and the page request event registers (0xC0..0xEF; without page-requests they
// stay undefined, reading 0), and the slots reserved while descriptors are written. Its
// invariants: one slot stays empty (full when the next tail would equal PQH), PQT moves only
// when no earlier slot is still being written, and PPR/PRO raise the event only when both
// were clear. What goes in the queue is decided by PageRequestQueue.swift.

/// Slots of the page request queue reserved while their descriptors are written.
struct PageRequestReservations {
    /// Index of the next free slot, counting slots reserved but not yet published in PQT.
    var tail = 0
    /// Descriptors being written to guest memory right now.
    var writesInFlight = 0
    /// Bumped by reset: a write that started before it publishes nothing after it.
    var epoch: UInt64 = 0

    mutating func reset() {
        tail = 0
        writesInFlight = 0
        epoch &+= 1
    }
}

struct PageRequestQueueState: Sendable {
    /// The part of the register window the page request queue owns.
    static let offsets = Reg.pageRequestQueueHead..<Reg.invalidateAddress

    private(set) var registers: RegisterFile
    private(set) var reservations = PageRequestReservations()
    /// PQA.base is limited to the host address width.
    private let hostAddressMask: UInt64

    init(configuration c: VTdConfiguration, hostAddressMask: UInt64) {
        self.hostAddressMask = hostAddressMask
        registers = RegisterFile(base: Self.offsets.lowerBound, size: Self.offsets.count)
        guard c.pageRequests else { return }
        registers.define(Reg.pageRequestQueueHead, width: 8, writable: PageRequestQueuePointer.writable)
        registers.define(Reg.pageRequestQueueTail, width: 8, writable: PageRequestQueuePointer.writable)
        registers.define(Reg.pageRequestQueueAddress, width: 8, writable: PageRequestQueueAddress.writable)
        registers.define(Reg.pageRequestStatus, width: 4,
                         writeOneToClear: UInt64(PageRequestStatus.writeOneToClear.rawValue))
        registers.defineEventRegisters(.pageRequest, extendedInterruptMode: c.extendedInterruptMode)
    }

    /// Registers to reset values; a descriptor write under way publishes nothing afterwards.
    mutating func reset() {
        registers.reset()
        reservations.reset()
    }

    /// A guest write through the registers' masks; the unit then calls the `...Written` hook.
    mutating func guestWrite(_ offset: Int, _ value: UInt64, width: Int) {
        registers.write(offset, value, width: width)
    }

    mutating func restore(window words: [UInt32]) { registers.restore(rawWords: words[registers.wordRange]) }

    // MARK: Registers as the model reads them

    var status: PageRequestStatus { PageRequestStatus(rawValue: registers.get32(Reg.pageRequestStatus)) }

    /// PQA with its base limited to the host address width.
    var address: PageRequestQueueAddress {
        PageRequestQueueAddress(rawValue: registers.get64(Reg.pageRequestQueueAddress)
                                & (hostAddressMask | UInt64.mask(11, 0)))
    }

    var head: Int { PageRequestQueuePointer(rawValue: registers.get64(Reg.pageRequestQueueHead)).index }
    var tail: Int { PageRequestQueuePointer(rawValue: registers.get64(Reg.pageRequestQueueTail)).index }

    /// PQT on `index`, wrapping at the end of the ring.
    mutating func publish(tail index: Int) {
        registers.set64(Reg.pageRequestQueueTail, PageRequestQueuePointer(index: index % address.entryCount).rawValue)
    }

    // MARK: Slots

    enum Reservation {
        /// PRS.PRO is set: every request is dropped until software clears it.
        case overflowed
        /// No free slot: PRO is now set.
        case full(head: Int, tail: Int)
        /// Write the descriptor at `address`, then `finishWrite` with `nextTail` and `epoch`.
        case slot(address: UInt64, nextTail: Int, epoch: UInt64)
    }

    /// Reserves the next slot for a descriptor, or says why there is none.
    mutating func reserveSlot(effects: inout Effects) -> Reservation {
        guard !status.contains(.pageRequestOverflow) else { return .overflowed }
        let entries = address.entryCount
        if reservations.writesInFlight == 0 {
            // Nothing unpublished: PQT is the truth (software may have rewritten it).
            reservations.tail = tail
        }
        let slot = reservations.tail % entries
        let next = (slot + 1) % entries
        guard next != head else {
            signal(overflowed: true, effects: &effects)
            return .full(head: head, tail: slot)
        }
        reservations.tail = next
        reservations.writesInFlight += 1
        return .slot(address: address.base &+ UInt64(slot) * PageRequestDescriptor.size, nextTail: next,
                     epoch: reservations.epoch)
    }

    /// The descriptor of a slot was written (or failed to be). Returns false when a reset came
    /// in between (the slot is gone). A failed write gives its slot back when no later slot was
    /// reserved behind it; once no write is in flight PQT moves and PPR is signalled.
    mutating func finishWrite(nextTail: Int, epoch: UInt64, written: Bool, effects: inout Effects) -> Bool {
        guard epoch == reservations.epoch else { return false }
        reservations.writesInFlight -= 1
        if !written && reservations.tail == nextTail {
            let entries = address.entryCount
            reservations.tail = (nextTail + entries - 1) % entries
        }
        if reservations.writesInFlight == 0 && reservations.tail != tail {
            publish(tail: reservations.tail)
            signal(effects: &effects)
        }
        return true
    }

    // MARK: Status and event

    /// A page request was written to the queue (PPR), or dropped because it was full (PRO).
    /// Setting PPR or PRO while both were clear is a new page request event condition.
    mutating func signal(overflowed: Bool = false, effects: inout Effects) {
        let before = status
        let after = before.union(overflowed ? .pageRequestOverflow : .pendingPageRequest)
        registers.set32(Reg.pageRequestStatus, after.rawValue)
        if before.isEmpty { registers.raiseEvent(.pageRequest, effects: &effects) }
    }

    /// After software wrote PRS.
    mutating func statusWritten() {
        if status.isEmpty { registers.eventServiced(.pageRequest) }
    }

    /// After software wrote PECTL: unmasking delivers what was pending.
    mutating func eventControlWritten(effects: inout Effects) {
        registers.eventControlWritten(.pageRequest, effects: &effects)
    }
}
