// Concurrency stress: threads translate while another rewrites the tables and invalidates through
// the register window and the invalidation queue, as a guest driver does. The rule checked is the
// one a driver relies on (VT-d 6.5.2.8): once a wait descriptor has completed, no translation
// started afterwards may come from the tables as they were before the invalidations ahead of it.
// The queue's callbacks re-enter the unit meanwhile (translations and register reads from inside
// the status write and the completion MSI, a status write into the register window) and must
// neither deadlock nor see a stale translation.
//
// Every epoch k maps the four test pages to outputs only epoch k uses, so each answer says which
// epoch of the tables it came from.

import Synchronization
import Testing
@testable import VTdModel

/// GuestMemory plus the unit's own register window, with the callbacks QEMU could make.
private final class ReentrantGuest: Platform, @unchecked Sendable {
    static let registerWindow: UInt64 = 0xFED9_0000
    let memory = GuestMemory()
    /// Set before any thread starts, read-only afterwards.
    var unit: VTdUnit!
    var statusAddress: UInt64 = 0
    /// Runs inside the status write to `statusAddress`, before the status lands.
    var onStatusWrite: ((UInt32) -> Void)?
    /// Runs inside every MSI.
    var onMSI: (() -> Void)?

    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        memory.readGuest(address, into: buffer)
    }

    func writeGuest(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(8))) }
        if address >= Self.registerWindow && address - Self.registerWindow < UInt64(unit.windowSize) {
            // DMA to the IOMMU's own registers is an MMIO write (QEMU dispatches it so).
            unit.mmioWrite(offset: Int(address - Self.registerWindow), value: value, width: bytes.count)
            return true
        }
        if address == statusAddress { onStatusWrite?(UInt32(truncatingIfNeeded: value)) }
        return memory.writeGuest(address, from: bytes)
    }

    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        memory.compareExchangeGuest64(address, expected: expected, desired: desired)
    }

    func sendMSI(address: UInt64, data: UInt32) { onMSI?() }
    func notify(_ event: PlatformEvent) {}
    func log(_ level: LogLevel, _ message: String) { memory.log(level, message) }
}

/// The four pages every epoch remaps, one 16 KiB-aligned block (a page-selective invalidation
/// with address mask 2 covers it), and the outputs that name their epoch.
private enum Pages {
    static let iovas: [UInt64] = [0x10000, 0x11000, 0x12000, 0x13000]
    static let outputBase: UInt64 = 0x4000_0000

    static func output(epoch: Int, page: Int) -> UInt64 { outputBase + UInt64(epoch * 4 + page) << 12 }

    /// The epoch whose tables gave `output` for `page`, nil for an output no epoch uses there.
    static func epoch(of output: UInt64, page: Int) -> Int? {
        guard output >= outputBase, output & 0xFFF == 0 else { return nil }
        let slot = Int((output - outputBase) >> 12)
        return slot % 4 == page ? slot / 4 : nil
    }
}

/// Bounded list of what went wrong on the threads (Swift Testing records issues on the test's
/// own task only, so the test body reports them).
private final class Violations: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ s: String) { list.withLock { if $0.count < 20 { $0.append(s) } } }
    var all: [String] { list.withLock { $0 } }
}

/// How one mode lays out two table trees and what the writer does each epoch.
private protocol StressTables {
    var configuration: VTdConfiguration { get }
    /// Builds both trees (tree 0 active, every page at epoch 0) and turns translation on.
    mutating func build(_ guest: GuestMemory, _ unit: VTdUnit)
    /// Maps every page of `tree` to `epoch`'s outputs.
    func write(epoch: Int, tree: Int)
    /// Points the device at `tree`.
    func activate(tree: Int)
    /// Invalidations that make a leaf change seen: page-selective or whole-domain.
    func leafInvalidation(pageSelective: Bool) -> [InvalidationDescriptor]
    /// Invalidations that make a switch of tree seen.
    var treeInvalidation: [InvalidationDescriptor] { get }
    /// PASID the readers may put on their requests (nil: requests without PASID only).
    var readerPASID: UInt32? { get }
}

private struct LegacyStress: StressTables {
    var configuration: VTdConfiguration { .legacy }
    var guest: GuestMemory!
    var device: LegacyDevice!
    var trees: [SecondLevelTables] = []

    mutating func build(_ guest: GuestMemory, _ unit: VTdUnit) {
        self.guest = guest
        let root = guest.legacyRoot()
        device = root.device(domain: 1)
        trees = [device.secondLevel, SecondLevelTables(guest: guest, levels: 4)]
        write(epoch: 0, tree: 0)
        write(epoch: 0, tree: 1)
        unit.enableTranslation(root)
    }

    func write(epoch: Int, tree: Int) {
        for (i, iova) in Pages.iovas.enumerated() { trees[tree].map(iova: iova, to: Pages.output(epoch: epoch, page: i)) }
    }

    func activate(tree: Int) {
        guest.write64(device.contextEntry, trees[tree].root | 1)
    }

    func leafInvalidation(pageSelective: Bool) -> [InvalidationDescriptor] {
        [pageSelective ? Desc.iotlbPages(1, Pages.iovas[0], am: 2) : Desc.iotlbDomain(1)]
    }

    var treeInvalidation: [InvalidationDescriptor] {
        [Desc.contextDevice(1, sid: testSourceID, fm: 0), Desc.iotlbDomain(1)]
    }

    var readerPASID: UInt32? { nil }
}

private struct FirstLevelStress: StressTables {
    var configuration: VTdConfiguration { .scalableFirstLevel }
    var guest: GuestMemory!
    var trees: [FirstLevelTables] = []
    var pasidEntry: UInt64 = 0

    mutating func build(_ guest: GuestMemory, _ unit: VTdUnit) {
        self.guest = guest
        let root = guest.scalableRoot()
        let device = root.device()
        trees = [device.firstLevel(pasid: 0, domain: 1), FirstLevelTables(guest: guest, levels: 4)]
        pasidEntry = device.pasidEntryAddress(0)
        write(epoch: 0, tree: 0)
        write(epoch: 0, tree: 1)
        unit.enableTranslation(root)
    }

    func write(epoch: Int, tree: Int) {
        // No accessed/dirty bits: the readers' walks set them, racing the rewrites.
        for (i, iova) in Pages.iovas.enumerated() { trees[tree].map(iova: iova, to: Pages.output(epoch: epoch, page: i)) }
    }

    func activate(tree: Int) {
        // FLPTR is val[2] bits 63:12; the flags below stay.
        let word = pasidEntry + 16
        guest.write64(word, guest.read64(word) & 0xFFF | trees[tree].root)
    }

    func leafInvalidation(pageSelective: Bool) -> [InvalidationDescriptor] {
        [pageSelective ? Desc.pasidIOTLBPages(1, pasid: 0, Pages.iovas[0], am: 2, ih: false)
                       : Desc.pasidIOTLBAll(1, pasid: 0)]
    }

    var treeInvalidation: [InvalidationDescriptor] {
        [Desc.pasidCache(granularity: 1, 1, pasid: 0), Desc.pasidIOTLBAll(1, pasid: 0)]
    }

    var readerPASID: UInt32? { 0 }
}

@Suite("Concurrency stress: translations racing table rewrites and queued invalidation")
struct ConcurrencyStressTests {
    static let epochs = 1500
    static let readers = 3

    @Test("after each completed wait descriptor no translation is stale; re-entrant callbacks neither deadlock nor see stale tables",
          .timeLimit(.minutes(1)), arguments: ["legacy second level", "scalable first level"])
    func translationsAreNeverStaleAfterAWait(mode: String) {
        var tables: any StressTables = mode == "legacy second level" ? LegacyStress() : FirstLevelStress()
        let platform = ReentrantGuest()
        let guest = platform.memory
        let unit = try! VTdUnit(configuration: tables.configuration, platform: platform)
        platform.unit = unit
        tables.build(guest, unit)
        // The writer's side. Scalable mode uses 256-bit descriptors (IQA.DW), as Linux does and
        // PASID-based invalidation needs; each epoch's waits raise the completion interrupt.
        let queue = GuestQueue(unit, guest: guest, wide: tables.configuration.scalableMode)
        unit.mmioWrite(offset: Reg.invalidationEventAddress, value: 0xFEE0_0000, width: 4)
        unit.mmioWrite(offset: Reg.invalidationEventControl, value: 0, width: 4)
        platform.statusAddress = guest.allocatePage()
        let readerPASID = tables.readerPASID

        let completed = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        let violations = Violations()
        let translations = Atomic<Int>(0)
        let epochsSeen = Mutex<Set<Int>>([])

        /// The epoch `page` translates to now; records a violation for anything but an epoch.
        func currentEpoch(page: Int, pasid: PASID?, _ context: String) -> Int? {
            let request = TranslationRequest.read(Pages.iovas[page] | 0x18, pasid: pasid)
            guard let address = unit.translate(request).address,
                  let epoch = Pages.epoch(of: address & ~0xFFF, page: page) else {
                violations.add("\(context): page \(page) translated to \(unit.translate(request))")
                return nil
            }
            return epoch
        }

        // Inside the status write every invalidation ahead of the wait is done: the callback must
        // already see the new tables. Inside the completion MSI likewise.
        platform.onStatusWrite = { status in
            _ = unit.mmioRead(offset: Reg.globalStatus, width: 4)
            if let e = currentEpoch(page: 0, pasid: nil, "status write"), e != Int(status) {
                violations.add("inside the status write of epoch \(status): epoch \(e)")
            }
        }
        platform.onMSI = {
            _ = unit.mmioRead(offset: Reg.invalidationCompletionStatus, width: 4)
            let k = completed.load(ordering: .acquiring)
            if let e = currentEpoch(page: 1, pasid: nil, "completion MSI"), e < k {
                violations.add("inside the completion MSI after epoch \(k): epoch \(e)")
            }
        }

        let writer = {
            var active = 0
            for k in 1...Self.epochs {
                var descriptors: [InvalidationDescriptor]
                if k % 3 == 0 {
                    active ^= 1
                    tables.write(epoch: k, tree: active)
                    tables.activate(tree: active)
                    descriptors = tables.treeInvalidation
                } else {
                    tables.write(epoch: k, tree: active)
                    descriptors = tables.leafInvalidation(pageSelective: k % 3 == 1)
                }
                // A wait with a status write and the completion interrupt, then one whose status
                // write lands in the register window (FEDATA): DMA re-entering the unit's MMIO.
                descriptors.append(Desc.wait(status: UInt32(k), at: platform.statusAddress, interrupt: true))
                descriptors.append(Desc.wait(status: UInt32(k), at: ReentrantGuest.registerWindow + UInt64(Reg.faultEventData)))
                queue.submit(descriptors)

                let status = guest.read64(platform.statusAddress) & 0xFFFF_FFFF
                let head = unit.mmioRead(offset: Reg.invalidationQueueHead, width: 8)
                let fsts = unit.mmioRead(offset: Reg.faultStatus, width: 4)
                if status != UInt64(k) || head != queue.tailRegister || fsts != 0
                    || unit.mmioRead(offset: Reg.faultEventData, width: 4) != UInt64(k & 0xFFFF) {
                    violations.add("epoch \(k): status \(status), IQH \(head), FSTS \(fsts), IQERCD "
                                   + "\(unit.mmioRead(offset: Reg.invalidationQueueErrorRecord, width: 8))")
                }
                completed.store(k, ordering: .releasing)
            }
            done.store(true, ordering: .releasing)
        }

        let reader = { (index: Int) in
            var page = index
            while !done.load(ordering: .acquiring) {
                page = (page + 1) % 4
                let pasid = index == 0 ? readerPASID : nil
                let before = completed.load(ordering: .acquiring)
                guard let epoch = currentEpoch(page: page, pasid: pasid.map(PASID.init(rawValue:)), "reader \(index)") else { return }
                let after = completed.load(ordering: .acquiring)
                translations.add(1, ordering: .relaxed)
                // Started after wait `before` completed: never older tables. Done before wait
                // `after + 1` completed: never tables the writer had not written yet.
                if epoch < before || epoch > after + 1 {
                    violations.add("reader \(index): page \(page) from epoch \(epoch), waits \(before)...\(after) completed")
                }
                if page == 0 { epochsSeen.withLock { _ = $0.insert(epoch) } }
            }
        }

        onThreads("stress \(mode)", [writer] + (0..<Self.readers).map { i in { reader(i) } })
        // The callbacks hold the unit, which holds the platform: break the cycle.
        platform.onStatusWrite = nil
        platform.onMSI = nil
        platform.unit = nil

        #expect(violations.all.isEmpty, "\(violations.all.joined(separator: "\n"))")
        // The race was real: readers kept translating while the tables moved on.
        #expect(translations.load(ordering: .relaxed) >= Self.epochs)
        #expect(epochsSeen.withLock { $0.count } >= 3)
        #expect(unit.faultStatus.isEmpty)
    }
}
