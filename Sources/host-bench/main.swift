// host-bench: what nesting saves. Counts host ioctls per 1,000 guest map+unmap pairs for the nested
// backend (guest maps are invisible to the host; each unmap is a PASID-based IOTLB invalidation,
// forwarded in batches that end at a wait descriptor) and for the shadow backend (caching mode: each
// map and each unmap is replayed as an IOAS ioctl). Runs against FakeIOMMUFD, so the figures count
// operations, not kernel time.
import Glibc
import HostIOMMU
import HostIOMMUTesting
import VTdModel

let pairs = 1_000
let page: UInt64 = 0x1000

struct Figures {
    var name: String
    var mapCalls = 0
    var unmapCalls = 0
    /// Guest invalidation batches the VMM had to handle (each a trap on the queue tail write).
    var traps = 0
    var nanoseconds: UInt64 = 0
    var total: Int { mapCalls + unmapCalls }
}

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

func fail(_ message: String) -> Never {
    print("host-bench: \(message)")
    exit(1)
}

/// Linux with iommu.strict=1 sends each unmap's P_IOTLB descriptor with its own wait; 6.12 batches
/// several descriptors before one wait.
func nested(unmapsPerWait: Int) -> Figures {
    let fake = FakeIOMMUFD()
    let iommufd = fake.openIOMMUFD()
    let backend = NestedBackend(guest: GuestCapabilityProfile(), seam: fake.seam)
    do {
        let device = try fake.assignDevice(requesterID: RequesterID(bus: 1, device: 0, function: 0), iommufd: iommufd)
        try backend.adopt(device)
        try backend.dmaRemappingChanged(enabled: true)
        try backend.bind(
            PASIDBinding(
                requesterID: device.requesterID, domainID: DomainID(rawValue: 1),
                translation: .firstLevel(FirstLevelTable(rootPointer: 0x10_0000))))
    } catch {
        fail("nested setup: \(error)")
    }
    fake.clearCallLog()
    var figures = Figures(name: unmapsPerWait == 1 ? "nested, wait after every unmap" : "nested, \(unmapsPerWait) unmaps per wait")
    let start = now()
    for index in 0..<pairs {
        // The guest's map writes its own first-level PTE: nothing reaches the VMM or the host.
        let invalidation = PASIDInvalidation(
            domainID: DomainID(rawValue: 1), pasid: .zero, scope: .pages(address: UInt64(index) * page, count: 1),
            leafOnly: true, tag: UInt64(index))
        backend.enqueue(invalidation)
        if (index + 1) % unmapsPerWait == 0 || index == pairs - 1 {
            let outcome = backend.endBatch()
            if outcome.result != .completed { fail("invalidation failed: \(outcome.result)") }
            figures.traps += 1
        }
    }
    figures.nanoseconds = now() - start
    figures.unmapCalls = fake.count(.hwptInvalidate)
    return figures
}

/// Caching mode: the guest invalidates after every map and unmap; the replay turns each into one
/// IOAS ioctl.
func shadow() -> Figures {
    let fake = FakeIOMMUFD()
    let iommufd = fake.openIOMMUFD()
    let backend = ShadowBackend()
    let device = RequesterID(bus: 1, device: 0, function: 0)
    do {
        let ioas = try IOMMUFDClient(seam: fake.seam).allocateIOAS(iommufd: iommufd)
        try backend.attach(
            device, sink: IOASShadowSink(iommufd: iommufd, ioas: ioas, seam: fake.seam, guestRAM: FakeIOMMUFD.guestRAM))
    } catch {
        fail("shadow setup: \(error)")
    }
    fake.clearCallLog()
    var figures = Figures(name: "shadow (caching mode)")
    let start = now()
    do {
        for index in 0..<pairs {
            let iova = 0x1000_0000 + UInt64(index) * page
            try backend.apply(
                .map(ShadowMapping(iova: iova, length: page, target: 0x2000_0000 + UInt64(index) * page, permissions: .readWrite)),
                for: device)
            try backend.apply(.unmap(iova: iova, length: page), for: device)
            figures.traps += 2
        }
    } catch {
        fail("shadow: \(error)")
    }
    figures.nanoseconds = now() - start
    figures.mapCalls = fake.count(.ioasMap)
    figures.unmapCalls = fake.count(.ioasUnmap)
    return figures
}

// MARK: The model's caching-mode shadow events per 1 MiB map+unmap pair

/// Guest memory for the model: a flat array holding the tables (targets are never read).
final class BenchGuest: Platform, @unchecked Sendable {
    var bytes = [UInt8](repeating: 0, count: 4 << 20)
    var next: UInt64 = 0x10000
    var maps = 0
    var unmaps = 0
    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard address + UInt64(buffer.count) <= UInt64(bytes.count) else { return false }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(address)..<Int(address) + buffer.count])) }
        return true
    }
    func writeGuest(_ address: UInt64, from source: UnsafeRawBufferPointer) -> Bool {
        guard address + UInt64(source.count) <= UInt64(bytes.count) else { return false }
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(address)..<Int(address) + source.count]).copyMemory(from: source) }
        return true
    }
    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        guard let old = readGuest64(address) else { return nil }
        if old == expected { write(address, desired) }
        return old
    }
    func sendMSI(address: UInt64, data: UInt32) {}
    func notify(_ event: PlatformEvent) {
        switch event {
        case .map: maps += 1
        case .unmap: unmaps += 1
        default: break
        }
    }
    func log(_ level: LogLevel, _ message: String) {}
    func write(_ address: UInt64, _ value: UInt64) {
        var le = value.littleEndian
        _ = withUnsafeBytes(of: &le) { writeGuest(address, from: $0) }
    }
    func page() -> UInt64 {
        defer { next += 0x1000 }
        return next
    }
    /// The 4 KiB second-level leaf slot of `iova` under the 4-level table at `root`.
    func leafSlot(root: UInt64, iova: UInt64) -> UInt64 {
        var table = root
        for level in stride(from: 4, to: 1, by: -1) {
            let slot = table + (iova >> UInt64(12 + 9 * (level - 1)) & 0x1FF) * 8
            var entry = readGuest64(slot)!
            if entry & 3 == 0 {
                entry = page() | 3
                write(slot, entry)
            }
            table = entry & 0x000F_FFFF_FFFF_F000
        }
        return table + (iova >> 12 & 0x1FF) * 8
    }
}

/// Legacy mode with caching mode and a MAP notifier on 00:01.0 (domain 1): the guest maps 1 MiB
/// (256 pages, scattered or contiguous in guest-physical memory), invalidates it page-selectively,
/// unmaps it and invalidates again. Counts the MAP and UNMAP events, one VFIO ioctl each.
/// `pagewise`: the map is invalidated one page at a time, as Linux does when VFIO type1 maps
/// scattered pages (one iommu_map, so one caching-mode flush, per physically contiguous run).
func modelShadow(contiguous: Bool, host: ShadowHost, pagewise: Bool = false, pairs: Int = 200) -> Figures {
    let guest = BenchGuest()
    var configuration = VTdConfiguration()
    configuration.cachingMode = true
    guard let unit = try? VTdUnit(configuration: configuration, platform: guest) else { fail("model unit") }
    let sid: UInt16 = 0x08
    let (rootTable, contextTable, slRoot) = (guest.page(), guest.page(), guest.page())
    guest.write(rootTable, contextTable | 1)
    guest.write(contextTable + UInt64(sid) * 16, slRoot | 1)
    guest.write(contextTable + UInt64(sid) * 16 + 8, 1 << 8 | 2)
    do { try unit.setNotifications([.map, .unmap], sourceID: sid, pasid: nil) } catch { fail("\(error)") }
    unit.setShadowHost(host, sourceID: sid)
    unit.mmioWrite(offset: 0x20, value: rootTable, width: 8)
    unit.mmioWrite(offset: 0x18, value: 1 << 30, width: 4)
    unit.mmioWrite(offset: 0x18, value: 1 << 31, width: 4)
    let iro = Int(unit.mmioRead(offset: 0x10, width: 8) >> 8 & 0x3FF) * 16
    let base: UInt64 = 0x1000_0000
    let slots = (0..<256).map { guest.leafSlot(root: slRoot, iova: base + UInt64($0) << 12) }
    func invalidate(_ iova: UInt64 = base, mask: UInt64 = 8) {
        unit.mmioWrite(offset: iro, value: iova | mask, width: 8)                    // IVA, AM: 2^mask pages
        unit.mmioWrite(offset: iro + 8, value: 1 << 63 | 3 << 60 | 1 << 32, width: 8)  // PSI, domain 1
    }
    var figures = Figures(name: "model shadow, \(host == .wholeAreas ? "iommufd" : "per leaf"), "
                              + (contiguous ? "contiguous" : pagewise ? "scattered, PSI/page" : "scattered"))
    let start = now()
    for _ in 0..<pairs {
        for (i, slot) in slots.enumerated() {
            guest.write(slot, 0x4000_0000 + UInt64(contiguous ? i : 2 * i) << 12 | 3)
            if pagewise {
                invalidate(base + UInt64(i) << 12, mask: 0)
                figures.traps += 1
            }
        }
        if !pagewise {
            invalidate()
            figures.traps += 1
        }
        for slot in slots { guest.write(slot, 0) }
        invalidate()
        figures.traps += 1
    }
    figures.nanoseconds = (now() - start) * UInt64(pairsPerFigure) / UInt64(pairs)
    figures.mapCalls = guest.maps * pairsPerFigure / pairs
    figures.unmapCalls = guest.unmaps * pairsPerFigure / pairs
    figures.traps = figures.traps * pairsPerFigure / pairs
    return figures
}
let pairsPerFigure = 1_000

print("host operations per \(pairs) guest map+unmap pairs (4 KiB pages, fake iommufd kernel)")
print("mode                                 map ioctls  unmap ioctls  total ioctls  VMM traps  us/pair")
for figures in [nested(unmapsPerWait: 1), nested(unmapsPerWait: 16), shadow()] {
    report(figures)
}
print("")
print("model shadow events per \(pairsPerFigure) guest map+unmap pairs of 1 MiB (256 pages; one VFIO ioctl each)")
print("mode                                 map ioctls  unmap ioctls  total ioctls  VMM traps  us/pair")
for figures in [modelShadow(contiguous: false, host: .perLeaf), modelShadow(contiguous: true, host: .perLeaf),
                modelShadow(contiguous: false, host: .wholeAreas), modelShadow(contiguous: true, host: .wholeAreas),
                modelShadow(contiguous: false, host: .perLeaf, pagewise: true),
                modelShadow(contiguous: false, host: .wholeAreas, pagewise: true)] {
    report(figures)
}

func report(_ figures: Figures) {
    let perPair = Double(figures.nanoseconds) / Double(pairs) / 1000
    let micro = (perPair * 100).rounded() / 100
    print(
        figures.name.padding(37) + "\(figures.mapCalls)".left(10) + "\(figures.unmapCalls)".left(14)
            + "\(figures.total)".left(14) + "\(figures.traps)".left(11) + "\(micro)".left(9))
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    func left(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
