// Queued-invalidation scenarios: a unit with queued invalidation enabled over a ring in
// FakeGuest RAM, descriptor builders that encode fields the way a Linux guest does, and
// readers for the registers a guest would look at afterwards.

@testable import VTdModel

/// Descriptors encoded field by field (VT-d spec 6.5.2; Linux `qi_flush_*` encodings).
enum Desc {
    static func contextGlobal() -> InvalidationDescriptor { .init(0x1 | 1 << 4, 0) }
    static func contextDomain(_ did: UInt16) -> InvalidationDescriptor { .init(0x1 | 2 << 4 | UInt64(did) << 16, 0) }
    static func contextDevice(_ did: UInt16, sid: UInt16, fm: UInt64) -> InvalidationDescriptor {
        .init(0x1 | 3 << 4 | UInt64(did) << 16 | UInt64(sid) << 32 | fm << 48, 0)
    }
    static func iotlbGlobal() -> InvalidationDescriptor { .init(0x2 | 1 << 4, 0) }
    static func iotlbDomain(_ did: UInt16, drain: Bool = false) -> InvalidationDescriptor {
        .init(0x2 | 2 << 4 | (drain ? 3 << 6 : 0) | UInt64(did) << 16, 0)
    }
    static func iotlbPages(_ did: UInt16, _ addr: UInt64, am: UInt64, ih: Bool = false) -> InvalidationDescriptor {
        .init(0x2 | 3 << 4 | UInt64(did) << 16, addr | (ih ? 1 << 6 : 0) | am)
    }
    static func deviceTLB(sid: UInt16, addr: UInt64, size: Bool) -> InvalidationDescriptor {
        .init(0x3 | UInt64(sid) << 32 | 4 << 16, addr | (size ? 1 : 0))
    }
    static func iecGlobal() -> InvalidationDescriptor { .init(0x4, 0) }
    static func iecIndex(_ index: UInt16, im: UInt64) -> InvalidationDescriptor {
        .init(0x4 | 1 << 4 | im << 27 | UInt64(index) << 32, 0)
    }
    static func wait(status: UInt32? = nil, at address: UInt64 = 0, interrupt: Bool = false,
                     fence: Bool = false) -> InvalidationDescriptor {
        var low: UInt64 = 0x5 | (interrupt ? 1 << 4 : 0) | (fence ? 1 << 6 : 0)
        if let status { low |= 1 << 5 | UInt64(status) << 32 }
        return .init(low, address)
    }
    static func pasidIOTLBAll(_ did: UInt16, pasid: UInt32) -> InvalidationDescriptor {
        .init(0x6 | 2 << 4 | UInt64(did) << 16 | UInt64(pasid) << 32, 0)
    }
    static func pasidIOTLBPages(_ did: UInt16, pasid: UInt32, _ addr: UInt64, am: UInt64, ih: Bool = true) -> InvalidationDescriptor {
        .init(0x6 | 3 << 4 | UInt64(did) << 16 | UInt64(pasid) << 32, addr | (ih ? 1 << 6 : 0) | am)
    }
    static func pasidCache(granularity: UInt64, _ did: UInt16, pasid: UInt32) -> InvalidationDescriptor {
        .init(0x7 | granularity << 4 | UInt64(did) << 16 | UInt64(pasid) << 32, 0)
    }
    static func pasidDeviceTLB(sid: UInt16, pasid: UInt32, addr: UInt64, size: Bool,
                               global: Bool = false) -> InvalidationDescriptor {
        .init(0x8 | 4 << 4 | UInt64(sid) << 16 | UInt64(pasid) << 32, addr | (size ? 1 << 11 : 0) | (global ? 1 : 0))
    }
    static func pageGroupResponse(rid: UInt16, pasid: UInt32?, code: UInt64, index: UInt64) -> InvalidationDescriptor {
        .init(0x9 | (pasid != nil ? 1 << 4 : 0) | code << 12 | UInt64(rid) << 16 | UInt64(pasid ?? 0) << 32, index << 3)
    }
}

/// Guest RAM whose writes by the unit (status writes) can also run a scripted action, as a
/// guest re-entering the unit from a callback would.
final class HookableGuest: Platform {
    let ram = FakeGuest()
    var onWrite: (() -> Void)?
    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        ram.readGuest(address, into: buffer)
    }
    func writeGuest(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        let ok = ram.writeGuest(address, from: bytes)
        onWrite?()
        return ok
    }
    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        ram.compareExchangeGuest64(address, expected: expected, desired: desired)
    }
    func sendMSI(address: UInt64, data: UInt32) { ram.sendMSI(address: address, data: data) }
    func notify(_ event: PlatformEvent) { ram.notify(event) }
    func log(_ level: LogLevel, _ message: String) { ram.log(level, message) }
}

final class InvalidationQueueScenario {
    let memory = HookableGuest()
    var guest: FakeGuest { memory.ram }
    let unit: VTdUnit
    let base: UInt64
    let wide: Bool
    let entries: Int
    private(set) var tail = 0

    /// A ring of 2^qs pages at `base`, 256-bit descriptors when `scalable` (IQA.DW set).
    init(scalable: Bool = false, pageRequests: Bool = false, setDW: Bool? = nil, qs: UInt64 = 0,
         base: UInt64 = 0x20000, configure: (inout VTdConfiguration) -> Void = { _ in }) {
        var configuration = VTdConfiguration()
        configuration.scalableMode = scalable
        configuration.pasid = pageRequests
        configuration.pageRequests = pageRequests
        configure(&configuration)
        unit = try! VTdUnit(configuration: configuration, platform: memory)
        self.base = base
        let dw = setDW ?? scalable
        wide = scalable && dw
        entries = (4096 << Int(qs)) / (wide ? 32 : 16)
        // As a guest driver does it: IQA, then GCMD.QIE, then the event registers.
        unit.mmioWrite(offset: Reg.invalidationQueueAddress, value: base | (dw ? 1 << 11 : 0) | qs, width: 8)
        unit.mmioWrite(offset: Reg.globalCommand, value: 1 << 26, width: 4)
        // Both event interrupts unmasked, with recognisable messages.
        unit.mmioWrite(offset: Reg.faultEventAddress, value: 0xFEE0_0000, width: 4)
        unit.mmioWrite(offset: Reg.faultEventData, value: 0x31, width: 4)
        unit.mmioWrite(offset: Reg.faultEventControl, value: 0, width: 4)
        unit.mmioWrite(offset: Reg.invalidationEventAddress, value: 0xFEE0_1000, width: 4)
        unit.mmioWrite(offset: Reg.invalidationEventData, value: 0x41, width: 4)
        unit.mmioWrite(offset: Reg.invalidationEventControl, value: 0, width: 4)
    }

    /// Writes `descriptors` at the tail (wrapping), moves IQT past them and lets the unit run.
    func submit(_ descriptors: InvalidationDescriptor...) { submit(descriptors) }

    func submit(_ descriptors: [InvalidationDescriptor]) {
        for d in descriptors { place(d) }
        setTail(tail)
    }

    /// At the unit's first guest write (a status write), queues `descriptor` and writes IQT, as
    /// a guest re-entering the unit from that callback would; `then` runs right after, still
    /// inside the callback.
    func queueFromFirstStatusWrite(_ descriptor: InvalidationDescriptor, then: @escaping () -> Void = {}) {
        var writes = 0
        memory.onWrite = { [unowned self] in
            writes += 1
            guard writes == 1 else { return }
            place(descriptor)
            setTail(tail)
            then()
        }
    }

    /// Writes a descriptor at the tail without telling the unit.
    func place(_ d: InvalidationDescriptor) {
        guest.writeDescriptor(d, at: base + UInt64(tail * (wide ? 32 : 16)), wide: wide)
        tail = (tail + 1) % entries
    }

    /// IQT write (byte offset): the unit processes the queue before this returns.
    func setTailRaw(_ raw: UInt64) {
        unit.mmioWrite(offset: Reg.invalidationQueueTail, value: raw, width: 8)
    }

    func setTail(_ index: Int) { setTailRaw(UInt64(index) << (wide ? 5 : 4)) }

    /// Starts the ring at `index` (as if earlier descriptors had been processed).
    func moveHead(to index: Int) {
        tail = index
        unit.state.withLock { $0.invalidationQueue.moveHead(to: index) }
        unit.mmioWrite(offset: Reg.invalidationQueueTail, value: UInt64(index) << (wide ? 5 : 4), width: 8)
    }

    var head: Int {
        unit.state.withLock { Int($0.invalidationQueue.registers.get64(Reg.invalidationQueueHead) >> (wide ? 5 : 4)) }
    }
    var queueError: Bool { unit.state.withLock { $0.faults.status.rawValue & 0x10 != 0 } }
    var errorInfo: UInt64 { unit.state.withLock { $0.invalidationQueue.registers.get64(Reg.invalidationQueueErrorRecord) & 0xF } }
    var waitComplete: Bool { unit.state.withLock { $0.invalidationQueue.registers.get32(Reg.invalidationCompletionStatus) & 1 != 0 } }
    var completionPending: Bool { unit.state.withLock { $0.invalidationQueue.registers.get32(Reg.invalidationEventControl) & (1 << 30) != 0 } }

    /// FSTS.IQE is write-1-to-clear; clearing it lets the queue resume.
    func clearQueueError() {
        unit.mmioWrite(offset: Reg.faultStatus, value: 0x10, width: 4)
    }

    func status(at address: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: guest.read64(address) ?? 0) }

    /// Puts a translation in the IOTLB, as the translate path would.
    func cache(sid: RequesterID = 0x10, domain: DomainID, pasid: PASID? = nil, effectivePASID: PASID?? = .none,
               iova: UInt64, shift: UInt8 = 12) {
        unit.state.withLock {
            $0.caches.iotlb.insert(IOTLBEntry(domainID: domain, sourceID: sid, pasid: pasid, effectivePASID: effectivePASID ?? pasid,
                                       inputPage: iova, outputPage: iova | 0x8000_0000, pageShift: shift,
                                       permissions: .readWrite))
        }
    }

    func cached(sid: RequesterID = 0x10, pasid: PASID? = nil, iova: UInt64) -> Bool {
        unit.state.withLock { $0.caches.iotlb.lookup(sourceID: sid, pasid: pasid, address: iova) != nil }
    }
}
