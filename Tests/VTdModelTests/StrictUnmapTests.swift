// The strict-mode unmap's own path (StrictUnmap.swift) against the general queue run: the same
// guest, driven the same way, ends in the same registers, status words, interrupts, logs and
// IOTLB whichever way its IQT writes went. The general way is forced by dropping the unit's ring
// hint before each IQT write (without it the write has no descriptors read ahead).

import Testing
@testable import VTdModel

/// One unit with cached translations, its queue, and whether its IQT writes may take the
/// strict-mode path.
private final class StrictUnmapRig {
    let guest = GuestMemory()
    let unit: VTdUnit
    let queue: GuestQueue
    let strictAllowed: Bool
    let legacy: Bool
    static let iovas: [UInt64] = (0..<4).map { 0x10_0000 + UInt64($0) * 0x1000 }

    init(legacy: Bool, strictAllowed: Bool) {
        self.legacy = legacy
        self.strictAllowed = strictAllowed
        if legacy {
            unit = guest.makeUnit(.legacy)
            let root = guest.legacyRoot()
            let device = root.device(domain: 3)
            for (i, iova) in Self.iovas.enumerated() { device.map(iova: iova, to: 0x5_0000_0000 + UInt64(i) * 0x1000) }
            unit.enableTranslation(root)
        } else {
            unit = guest.makeUnit(.scalableFirstLevel)
            let root = guest.scalableRoot()
            let tables = root.device().firstLevel(domain: 3)
            for (i, iova) in Self.iovas.enumerated() { tables.mapLikeLinux(iova: iova, to: 0x5_0000_0000 + UInt64(i) * 0x1000) }
            unit.enableTranslation(root)
        }
        queue = GuestQueue(unit, guest: guest, wide: !legacy)
        // A first run, so that the unit has a ring hint from here on.
        #expect(queue.flush([]))
    }

    func translateAll() {
        for iova in Self.iovas { _ = unit.translate(.read(iova)) }
    }

    func submit(_ descriptors: [InvalidationDescriptor]) {
        if !strictAllowed { unit.queueRingHint.store(0, ordering: .relaxed) }
        queue.submit(descriptors)
    }

    /// What the guest and the host can see of the unit, and what it holds cached.
    var observed: Observed {
        Observed(registers: unit.state.withLock { $0.registerWords }, msis: guest.sentMSIs,
                 logs: guest.logs.map(\.1), iotlb: unit.state.withLock { $0.caches.iotlb.entries }.map { "\($0)" }.sorted(),
                 status: guest.read64(queue.statusAddress))
    }

    struct Observed: Equatable {
        var registers: [UInt32]
        var msis: [MSIMessage]
        var logs: [String]
        var iotlb: [String]
        var status: UInt64
    }
}

@Suite("Strict-mode unmap: the IQT write of one IOTLB invalidation and a wait ends as the general queue run ends it")
struct StrictUnmapTests {
    /// Descriptor batches, each followed by more, as a guest could queue them. Addresses outside
    /// guest memory make the status write fail.
    enum Case: String, CaseIterable, CustomTestStringConvertible {
        case pageSelective, pageSelectiveWithInterrupt, domainSelective, statusWriteFails, reservedBitInInvalidation,
             reservedBitInWait, waitWithoutStatusWrite, threeDescriptors, maskAboveMAMV, onlyAWait, wrapsTheRing
        var testDescription: String { rawValue }
    }

    private func batches(_ c: Case, legacy: Bool, status: UInt64) -> [[InvalidationDescriptor]] {
        let page = StrictUnmapRig.iovas[1]
        let invalidation = legacy ? Desc.iotlbPages(3, page, am: 0) : Desc.pasidIOTLBPages(3, pasid: 0, page, am: 0)
        let wait = Desc.wait(status: 7, at: status)
        switch c {
        case .pageSelective: return [[invalidation, wait]]
        case .pageSelectiveWithInterrupt: return [[invalidation, Desc.wait(status: 7, at: status, interrupt: true)]]
        case .domainSelective: return [[legacy ? Desc.iotlbDomain(3) : Desc.pasidIOTLBAll(3, pasid: 0), wait]]
        case .statusWriteFails: return [[invalidation, Desc.wait(status: 7, at: 0xFFFF_0000_0000)]]
        case .reservedBitInInvalidation:
            return [[InvalidationDescriptor(invalidation.low | 1 << 12, invalidation.high), wait]]
        case .reservedBitInWait: return [[invalidation, InvalidationDescriptor(wait.low | 1 << 8, wait.high)]]
        case .waitWithoutStatusWrite: return [[invalidation, Desc.wait(interrupt: true)]]
        case .threeDescriptors: return [[invalidation, Desc.iotlbGlobal(), wait]]
        case .maskAboveMAMV:
            return [[legacy ? Desc.iotlbPages(3, 0, am: 40) : Desc.pasidIOTLBPages(3, pasid: 0, 0, am: 40), wait]]
        case .onlyAWait: return [[wait]]
        case .wrapsTheRing:
            // Fill the ring up to its last slot, then put the pair across its end.
            let slots = legacy ? 256 : 128
            return [Array(repeating: Desc.wait(), count: slots - 2), [invalidation, wait]]
        }
    }

    @Test("each batch ends the same either way: registers, status, interrupts, logs, IOTLB", arguments: Case.allCases, [false, true])
    func sameAsTheGeneralRun(_ c: Case, legacy: Bool) {
        let strict = StrictUnmapRig(legacy: legacy, strictAllowed: true)
        let general = StrictUnmapRig(legacy: legacy, strictAllowed: false)
        for rig in [strict, general] {
            rig.translateAll()
            for batch in batches(c, legacy: legacy, status: rig.queue.statusAddress) { rig.submit(batch) }
            // And the usual pair after it, once the guest cleared any error.
            rig.unit.mmioWrite(offset: Reg.faultStatus, value: UInt64(FaultStatus.invalidationQueueError.rawValue), width: 4)
            rig.translateAll()
            rig.submit(batches(.pageSelective, legacy: legacy, status: rig.queue.statusAddress)[0])
        }
        #expect(strict.observed == general.observed)
    }

    @Test("only the pair it is meant for takes the path, and the run ends with IQH past the wait", arguments: [false, true])
    func takenForThePairOnly(legacy: Bool) {
        let rig = StrictUnmapRig(legacy: legacy, strictAllowed: true)
        rig.translateAll()
        let wide = !legacy
        let head = rig.unit.state.withLock { $0.invalidationQueue.head }
        let window = InvalidationQueueWindow(base: rig.queue.base, wide: wide, entries: wide ? 128 : 256, head: head, count: 2)
        func attempt(_ pair: [InvalidationDescriptor]) -> PendingStatusWrite? {
            var words = pair.flatMap { d in wide ? [d.words.0, d.words.1, d.words.2, d.words.3] : [d.words.0, d.words.1] }
            // The guest's IQT write, as far as the queue registers go.
            var effects = Effects()
            return rig.unit.state.withLock { s in
                s.guestWriteInvalidationQueueTail(UInt64(head + 2) << (wide ? 5 : 4), width: 8, effects: &effects)
                var processed = 0
                let write = words.withUnsafeMutableBufferPointer {
                    s.applyStrictUnmap(UnsafePointer($0.baseAddress!), window: window, processed: &processed, effects: &effects)
                }
                if write != nil {
                    // The run it claimed is under way: nothing else may start one until it completes.
                    let another = s.invalidationQueue.beginRun()
                    #expect(processed == 1 && s.invalidationQueue.head == head + 1 && !another)
                } else {
                    let claimed = s.invalidationQueue.beginRun()
                    #expect(processed == 0 && s.invalidationQueue.head == head && claimed)
                    s.invalidationQueue.endRun()
                }
                return write
            }
        }
        let page = StrictUnmapRig.iovas[1]
        let invalidation = legacy ? Desc.iotlbPages(3, page, am: 0) : Desc.pasidIOTLBPages(3, pasid: 0, page, am: 0)
        #expect(attempt([invalidation, Desc.wait()]) == nil, "a wait without a status write")
        #expect(attempt([Desc.iotlbGlobal(), Desc.iotlbGlobal()]) == nil, "no wait")
        #expect(attempt([Desc.iecGlobal(), Desc.wait(status: 1, at: 0x1000)]) == nil, "not an IOTLB invalidation")
        let write = attempt([invalidation, Desc.wait(status: 9, at: 0x2000)])
        #expect(write?.head == head + 1 && write?.address == 0x2000 && write?.data == 9)
    }
}
