// host-bench: what nesting saves. Counts host ioctls per 1,000 guest map+unmap pairs for the nested
// backend (guest maps are invisible to the host; each unmap is a PASID-based IOTLB invalidation,
// forwarded in batches that end at a wait descriptor) and for the shadow backend (caching mode: each
// map and each unmap is replayed as an IOAS ioctl). Runs against FakeIOMMUFD, so the figures count
// operations, not kernel time.
import Glibc
import HostIOMMU
import HostIOMMUTesting

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

print("host operations per \(pairs) guest map+unmap pairs (4 KiB pages, fake iommufd kernel)")
print("mode                                 map ioctls  unmap ioctls  total ioctls  VMM traps  us/pair")
for figures in [nested(unmapsPerWait: 1), nested(unmapsPerWait: 16), shadow()] {
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
