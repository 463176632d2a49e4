import Testing
@testable import VTdModel

/// SplitMix64: a small deterministic generator, so a failure replays.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Translation: the uncached reference walk")
struct ReferenceWalkerTests {
    @Test("walkUncached neither consults nor fills the caches, and records no fault")
    func uncached() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel()
        tables.mapLikeLinux(iova: 0x1000, to: 0x2000)
        unit.enableTranslation(root)
        for _ in 0..<2 {
            let reads = guest.readCount
            #expect(unit.walkUncached(.read(0x1000)).address == 0x2000)
            #expect(guest.readCount - reads == 8)
        }
        #expect(unit.walkUncached(.read(0x9000)).faultReason == .flEntryNotPresent)
        #expect(!unit.faultRecord(0).fault)
    }

    @Test("translate and walkUncached agree on random first- and second-level tables")
    func agreesWithTranslate() {
        var rng = SplitMix64(state: 0x5EED)
        for config in [VTdConfiguration.scalableNested, .legacy] {
            let guest = GuestMemory()
            let unit = guest.makeUnit(config)
            var iovas: [UInt64] = []
            if config.scalableMode {
                let root = guest.scalableRoot()
                let device = root.device()
                let first = device.firstLevel(pasid: 0)
                let second = device.secondLevel(pasid: 1)
                for _ in 0..<64 {
                    let iova = UInt64.random(in: 0..<(1 << 30), using: &rng) & ~0xFFF
                    first.map(iova: iova, to: UInt64.random(in: 1..<(1 << 36), using: &rng) & ~0xFFF,
                              writable: Bool.random(using: &rng), user: Bool.random(using: &rng))
                    second.map(iova: iova, to: UInt64.random(in: 1..<(1 << 36), using: &rng) & ~0xFFF,
                               permissions: Bool.random(using: &rng) ? .readWrite : .read)
                    iovas.append(iova)
                }
                unit.enableTranslation(root)
            } else {
                let root = guest.legacyRoot()
                let device = root.device()
                for _ in 0..<64 {
                    let iova = UInt64.random(in: 0..<(1 << 30), using: &rng) & ~0xFFF
                    device.map(iova: iova, to: UInt64.random(in: 1..<(1 << 36), using: &rng) & ~0xFFF,
                               permissions: Bool.random(using: &rng) ? .readWrite : .read)
                    iovas.append(iova)
                }
                unit.enableTranslation(root)
            }
            for _ in 0..<2000 {
                var address = iovas.randomElement(using: &rng)! | UInt64.random(in: 0..<0x1000, using: &rng)
                if Bool.random(using: &rng) { address ^= 1 << UInt64.random(in: 12..<40, using: &rng) }
                let pasid: PASID? = config.scalableMode ? [nil, 0, 1].randomElement(using: &rng)! : nil
                let request = TranslationRequest(sourceID: testRequester, pasid: pasid, address: address,
                                                 access: Bool.random(using: &rng) ? .write : .read)
                let expected = unit.walkUncached(request)
                let actual = unit.translate(request)
                #expect(actual.faultReason == expected.faultReason)
                #expect(actual.address == expected.address)
                if let a = actual.translation, let e = expected.translation {
                    // A hit may grant less than a walk would (write before the leaf is dirty).
                    #expect(e.permissions.isSuperset(of: a.permissions))
                    #expect(a.pageMask == e.pageMask)
                }
            }
        }
    }
}
