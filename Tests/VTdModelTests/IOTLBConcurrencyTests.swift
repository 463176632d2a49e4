import Synchronization
import Testing
@testable import VTdModel

/// Flags shared between the writer and the reader tasks.
private final class Race: Sendable {
    let stop = Atomic<Bool>(false)
    let wrong = Atomic<Int>(0)
    let translations = Atomic<Int>(0)
}

@Suite("IOTLB: lock-free hits")
struct IOTLBConcurrencyTests {
    /// Output of `page` in mapping version `version` (0 or 1): the page index is in the address,
    /// so an entry torn between two pages, or another page's entry, cannot pass for it.
    static func output(_ page: UInt64, _ version: UInt64) -> UInt64 { 0x2_0000_0000 | version << 28 | page << 12 }

    @Test("hits without the lock never return a torn or foreign entry while the writer inserts, evicts and invalidates")
    func readersDuringWrites() async {
        let guest = GuestMemory()
        var configuration = VTdConfiguration.scalableFirstLevel
        configuration.iotlbCapacity = 16   // constant eviction
        let unit = guest.makeUnit(configuration)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel(pasid: 0, domain: 1)
        let pages: UInt64 = 48
        for page in 0..<pages { tables.mapLikeLinux(iova: page << 12, to: Self.output(page, 0)) }
        unit.enableTranslation(root)
        let race = Race()

        await withTaskGroup(of: Void.self) { group in
            // One reader: with the writer that is one task per core of a 2-core machine; tasks also
            // yield now and then so that a narrower pool still makes progress.
            for reader in 0..<1 {
                group.addTask {
                    var rng = SplitMix64(state: UInt64(reader) + 100)
                    var round = 0
                    while !race.stop.load(ordering: .relaxed) {
                        round += 1
                        if round % 64 == 0 { await Task.yield() }
                        let page = UInt64.random(in: 0..<pages, using: &rng)
                        let t = unit.translate(.read(page << 12 | 0x10))
                        race.translations.wrappingAdd(1, ordering: .relaxed)
                        let legal = [Self.output(page, 0) | 0x10, Self.output(page, 1) | 0x10]
                        if t.translation?.pageMask != ~0xFFF || !legal.contains(t.address ?? 0) {
                            race.wrong.wrappingAdd(1, ordering: .relaxed)
                        }
                    }
                }
            }
            group.addTask {
                var rng = SplitMix64(state: 7)
                for step in 0..<4000 {
                    if step % 64 == 0 { await Task.yield() }
                    let page = UInt64.random(in: 0..<pages, using: &rng)
                    // Fill the cache as the writer too, then flip a mapping and invalidate it.
                    _ = unit.translate(.read(UInt64.random(in: 0..<pages, using: &rng) << 12))
                    tables.mapLikeLinux(iova: page << 12, to: Self.output(page, UInt64(step & 1)))
                    unit.state.withLock {
                        $0.invalidateIOTLB(step % 50 == 0 ? .domain(1)
                                           : .pasidPages(domain: 1, pasid: 0, address: page << 12, addressMask: 0, leafOnly: true))
                    }
                    // After the invalidation, this thread's own translation is the new one.
                    let now = unit.translate(.read(page << 12))
                    if now.address != Self.output(page, UInt64(step & 1)) {
                        race.wrong.wrappingAdd(1, ordering: .relaxed)
                    }
                }
                race.stop.store(true, ordering: .relaxed)
            }
        }
        #expect(race.wrong.load(ordering: .relaxed) == 0)
        #expect(race.translations.load(ordering: .relaxed) > 1000)
    }

    @Test("no lock-free hit while translation is off: requests are identity-mapped (GSTS.TES)")
    func offMeansLocked() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel(pasid: 0, domain: 1)
        tables.mapLikeLinux(iova: 0x5000, to: 0x9_9000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x5000)).address == 0x9_9000)
        #expect(unit.iotlbReader.lookup(sourceID: testRequester, pasid: nil, address: 0x5000) != nil)
        unit.disableTranslation()
        #expect(unit.iotlbReader.lookup(sourceID: testRequester, pasid: nil, address: 0x5000) == nil)
        #expect(unit.translate(.read(0x5000)).translation?.identity == true)
        unit.reset()
        #expect(unit.iotlbReader.lookup(sourceID: testRequester, pasid: nil, address: 0x5000) == nil)
    }

    @Test("a unit loaded from a saved state with translation on answers hits without the lock again")
    func afterMigration() throws {
        let guest = GuestMemory()
        let source = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device().firstLevel(pasid: 0, domain: 1).mapLikeLinux(iova: 0x5000, to: 0x9_9000)
        source.enableTranslation(root)
        let blob = source.saveState()
        let target = guest.makeUnit(.scalableFirstLevel)
        try blob.withUnsafeBytes { try target.loadState($0) }
        #expect(target.translate(.read(0x5000)).address == 0x9_9000)
        #expect(target.iotlbReader.lookup(sourceID: testRequester, pasid: nil, address: 0x5000) != nil)
    }
}
