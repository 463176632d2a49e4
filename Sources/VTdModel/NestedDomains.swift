// Domains that nested translations (PGTT 011, VT-d 3.8) were handed out for.
//
// A second-stage change is invalidated by a type-2 IOTLB descriptor naming the domain and
// guest-physical pages, while a nested translation is known by its first-stage input address:
// a host that cached one (UNMAP notifiers) must drop every address of such a domain. Linux relies
// on it (iommu/intel nested.c: "There is no easy way to identify the exact set of nested
// translations affected by a change in S2").
//
// Marked on the translate miss path (no allocation: the bitmap is allocated with the unit and
// written only when a bit changes); cleared on reset. A domain that stops nesting only
// over-notifies, which is always allowed.

struct NestedDomains {
    private var words = [UInt64](repeating: 0, count: (1 << 16) / 64)

    func contains(_ domain: DomainID) -> Bool {
        words[Int(domain.rawValue >> 6)] & (1 << UInt64(domain.rawValue & 63)) != 0
    }

    mutating func insert(_ domain: DomainID) {
        guard !contains(domain) else { return }
        words[Int(domain.rawValue >> 6)] |= 1 << UInt64(domain.rawValue & 63)
    }

    mutating func removeAll() {
        for i in words.indices where words[i] != 0 { words[i] = 0 }
    }
}
