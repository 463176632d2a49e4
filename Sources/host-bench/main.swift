// host-bench: what nesting saves. Counts host ioctls per 1,000 guest map+unmap pairs for the nested
// backend (guest maps are invisible to the host; each unmap is a PASID-based IOTLB invalidation,
// forwarded in batches that end at a wait descriptor) and for shadowing (caching mode: the model
// turns the guest's invalidations into MAP/UNMAP events, which QEMU's VFIO maps into the device's
// IOAS, one ioctl an event). Runs against FakeIOMMUFD, so the figures count operations, not
// kernel time.
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

// MARK: Shadowing: the model's events, mapped into an IOAS as QEMU's VFIO does

/// The guest and its VMM for one caching-mode device. Guest memory is a flat array holding the
/// tables (DMA targets are never read). Each MAP event becomes IOMMU_IOAS_MAP and each UNMAP event
/// IOMMU_IOAS_UNMAP on the device's IOAS, as VFIO's iommufd backend does from its IOMMU notifier;
/// the fake kernel refuses what the real one would (an unmap that cuts an area, a double map).
/// Unless `feedsKernel` is false: then events are dropped, so a run times the model alone.
final class ShadowingVMM: Platform {
    /// Guest memory: raw, so the bench's reads cost a copy (as QEMU's do), not a class's
    /// exclusivity checks.
    let bytes: UnsafeMutableRawBufferPointer = {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        return memory
    }()
    var next: UInt64 = 0x10000
    let feedsKernel: Bool
    let fake = FakeIOMMUFD()
    let iommufd: Int32
    let ioas: ObjectID
    let client: IOMMUFDClient

    deinit { bytes.deallocate() }

    init(feedsKernel: Bool) {
        self.feedsKernel = feedsKernel
        iommufd = fake.openIOMMUFD()
        client = IOMMUFDClient(seam: fake.seam)
        do { ioas = try client.allocateIOAS(iommufd: iommufd) } catch { fail("IOAS: \(error)") }
    }

    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard address <= UInt64(bytes.count), UInt64(buffer.count) <= UInt64(bytes.count) - address else { return false }
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[Int(address)..<Int(address) + buffer.count]))
        return true
    }
    func writeGuest(_ address: UInt64, from source: UnsafeRawBufferPointer) -> Bool {
        guard address <= UInt64(bytes.count), UInt64(source.count) <= UInt64(bytes.count) - address else { return false }
        UnsafeMutableRawBufferPointer(rebasing: bytes[Int(address)..<Int(address) + source.count]).copyMemory(from: source)
        return true
    }
    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        guard let old = readGuest64(address) else { return nil }
        if old == expected { write(address, desired) }
        return old
    }
    func sendMSI(address: UInt64, data: UInt32) {}
    func notify(_ event: PlatformEvent) {
        guard feedsKernel else { return }
        do throws(HostError) {
            switch event {
            case let .map(_, _, address, size, translated, permissions):
                var access: Permissions = []
                if permissions.contains(.read) { access.insert(.read) }
                if permissions.contains(.write) { access.insert(.write) }
                try client.map(iommufd: iommufd, ioas: ioas, iova: address, length: size,
                               userVA: FakeIOMMUFD.guestRAMBase + translated, permissions: access)
            case let .unmap(_, _, address, size):
                try client.unmap(iommufd: iommufd, ioas: ioas, iova: address, length: size)
            default:
                break
            }
        } catch {
            fail("VFIO would fail here: \(error)")
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

/// Legacy mode with caching mode and a MAP notifier on 00:01.0 (domain 1): the guest maps `pages`
/// 4 KiB pages (scattered or contiguous in guest-physical memory), invalidates them
/// page-selectively, unmaps them and invalidates again, `pairs` times (figures scaled to
/// `pairsPerFigure`). `host`: how the unit sends events, per leaf (as for a legacy type1 container,
/// one VFIO_IOMMU_MAP/UNMAP_DMA an event) or in whole areas (iommufd). `pagewise`: the map is
/// invalidated one page at a time, as Linux does when VFIO type1 maps scattered pages (one
/// iommu_map, so one caching-mode flush, per physically contiguous run). Two runs: one times the
/// model without the VMM, one counts the IOAS ioctls its events cost.
func modelShadow(pages: Int = 256, contiguous: Bool, host: ShadowHost, pagewise: Bool = false, queued: Bool = false,
                 pairs: Int = 200, name: String? = nil) -> Figures {
    var figures = Figures(name: name ?? "model shadow, \(host == .wholeAreas ? "iommufd" : "per leaf"), "
                              + (contiguous ? "contiguous" : pagewise ? "scattered, PSI/page" : "scattered")
                              + (queued ? ", queued" : ""))
    let timed = ShadowingVMM(feedsKernel: false)
    let start = now()
    let traps = shadowPairs(timed, pages: pages, contiguous: contiguous, host: host, pagewise: pagewise, pairs: pairs,
                            queued: queued)
    figures.nanoseconds = (now() - start) * UInt64(pairsPerFigure) / UInt64(pairs)
    let counted = ShadowingVMM(feedsKernel: true)
    _ = shadowPairs(counted, pages: pages, contiguous: contiguous, host: host, pagewise: pagewise, pairs: pairs,
                    queued: queued)
    if !counted.fake.areas(iommufd: counted.iommufd, ioas: counted.ioas).isEmpty {
        fail("\(figures.name): the IOAS kept mappings")
    }
    figures.mapCalls = counted.fake.count(.ioasMap) * pairsPerFigure / pairs
    figures.unmapCalls = counted.fake.count(.ioasUnmap) * pairsPerFigure / pairs
    figures.traps = traps * pairsPerFigure / pairs
    return figures
}

/// One run of `modelShadow`'s guest on `vmm`; returns the VMM traps (invalidations) it took. The
/// fake kernel's call log covers the pairs only.
func shadowPairs(_ vmm: ShadowingVMM, pages: Int, contiguous: Bool, host: ShadowHost, pagewise: Bool, pairs: Int,
                 queued: Bool = false) -> Int
{
    var configuration = VTdConfiguration()
    configuration.cachingMode = true
    guard let unit = try? VTdUnit(configuration: configuration, platform: vmm) else { fail("model unit") }
    let sid: RequesterID = 0x08
    let (rootTable, contextTable, slRoot) = (vmm.page(), vmm.page(), vmm.page())
    vmm.write(rootTable, contextTable | 1)
    vmm.write(contextTable + UInt64(sid.devfn) * 16, slRoot | 1)
    vmm.write(contextTable + UInt64(sid.devfn) * 16 + 8, 1 << 8 | 2)
    do { try unit.setNotifications([.map, .unmap], sourceID: sid, pasid: nil) } catch { fail("\(error)") }
    unit.setShadowHost(host, sourceID: sid)
    unit.mmioWrite(offset: 0x20, value: rootTable, width: 8)
    unit.mmioWrite(offset: 0x18, value: 1 << 30, width: 4)
    unit.mmioWrite(offset: 0x18, value: 1 << 31, width: 4)
    let iro = Int(unit.mmioRead(offset: 0x10, width: 8) >> 8 & 0x3FF) * 16
    let base: UInt64 = 0x1000_0000
    let slots = (0..<pages).map { vmm.leafSlot(root: slRoot, iova: base + UInt64($0) << 12) }
    let pagesMask = UInt64(pages.trailingZeroBitCount)  // pages: a power of two
    // Queued invalidation, as Linux flushes a caching-mode unit: an IOTLB page-selective
    // descriptor and a wait descriptor with a status write, one IQT write, per flush.
    let (ring, status) = (vmm.page(), vmm.page())
    var tail: UInt64 = 0
    var waits: UInt64 = 0
    if queued {
        unit.mmioWrite(offset: 0x90, value: ring, width: 8)                 // IQA: 256 128-bit descriptors
        unit.mmioWrite(offset: 0x18, value: 1 << 31 | 1 << 26, width: 4)    // GCMD: TE, QIE
    }
    func place(_ w0: UInt64, _ w1: UInt64) {
        vmm.write(ring + tail * 16, w0)
        vmm.write(ring + tail * 16 + 8, w1)
        tail = (tail + 1) % 256
    }
    func invalidate(_ iova: UInt64 = base, mask: UInt64 = pagesMask) {
        guard queued else {
            unit.mmioWrite(offset: iro, value: iova | mask, width: 8)                    // IVA, AM: 2^mask pages
            unit.mmioWrite(offset: iro + 8, value: 1 << 63 | 3 << 60 | 1 << 32, width: 8)  // PSI, domain 1
            return
        }
        waits += 1
        place(0x2 | 3 << 4 | 1 << 16, iova | mask)            // IOTLB PSI, domain 1, AM
        place(0x5 | 1 << 5 | waits << 32, status)             // wait, status write
        unit.mmioWrite(offset: 0x88, value: tail << 4, width: 8)
        if vmm.readGuest64(status) != waits { fail("wait descriptor \(waits) wrote no status") }
    }
    vmm.fake.clearCallLog()
    var traps = 0
    for _ in 0..<pairs {
        for (i, slot) in slots.enumerated() {
            vmm.write(slot, 0x4000_0000 + UInt64(contiguous ? i : 2 * i) << 12 | 3)
            if pagewise {
                invalidate(base + UInt64(i) << 12, mask: 0)
                traps += 1
            }
        }
        if !pagewise {
            invalidate()
            traps += 1
        }
        for slot in slots { vmm.write(slot, 0) }
        invalidate()
        traps += 1
    }
    return traps
}
let pairsPerFigure = 1_000

// `host-bench resync`: only the model's side of Linux's pattern (a queued PSI and wait per mapped
// page, iommufd host), for callgrind or perf; nothing is printed.
if CommandLine.arguments.dropFirst().first == "resync" {
    _ = shadowPairs(ShadowingVMM(feedsKernel: false), pages: 256, contiguous: false, host: .wholeAreas,
                    pagewise: true, pairs: 200, queued: true)
    exit(0)
}

print("host operations per \(pairs) guest map+unmap pairs (4 KiB pages, fake iommufd kernel); us/pair: the library's")
print("side (nested: NestedBackend and the fake kernel; shadowing: the model, without the VMM's ioctls)")
print("mode                                 map ioctls  unmap ioctls  total ioctls  VMM traps  us/pair")
for figures in [nested(unmapsPerWait: 1), nested(unmapsPerWait: 16),
                modelShadow(pages: 1, contiguous: true, host: .wholeAreas, pairs: pairs, name: "shadow (caching mode)")] {
    report(figures)
}
print("")
print("shadowing per \(pairsPerFigure) guest map+unmap pairs of 1 MiB (256 pages): the model's events, one IOAS ioctl each")
print("mode                                 map ioctls  unmap ioctls  total ioctls  VMM traps  us/pair")
for figures in [modelShadow(contiguous: false, host: .perLeaf), modelShadow(contiguous: true, host: .perLeaf),
                modelShadow(contiguous: false, host: .wholeAreas), modelShadow(contiguous: true, host: .wholeAreas),
                modelShadow(contiguous: false, host: .perLeaf, pagewise: true),
                modelShadow(contiguous: false, host: .wholeAreas, pagewise: true),
                modelShadow(contiguous: false, host: .wholeAreas, pagewise: true, queued: true)] {
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
