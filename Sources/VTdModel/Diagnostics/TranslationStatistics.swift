// Counters of the translate path, for the state dump. Plain integers in UnitState, bumped under
// the lock translate already holds: on the hit path one add to a line the lock section has
// touched anyway, no atomic, no allocation.

struct TranslationStatistics: Equatable {
    /// Requests answered from the IOTLB.
    var iotlbHits: UInt64 = 0
    /// Requests that walked the tables (IOTLB misses, ATS requests).
    var walks: UInt64 = 0
    /// Walks that ended in a fault.
    var faults: UInt64 = 0
    /// Requests while DMA remapping was off (GSTS.TES clear): identity, no lookup.
    var untranslated: UInt64 = 0
}
