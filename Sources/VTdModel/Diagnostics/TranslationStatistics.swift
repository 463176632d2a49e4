// Counters of the translate path, for the state dump. Plain integers in UnitState, bumped under
// the lock translate already holds. IOTLB hits are answered only without the lock and counted
// there, in IOTLB.lockFreeHits (a plain load and store, no locked add), added in when the dump is taken.

struct TranslationStatistics: Equatable {
    /// Requests answered from the IOTLB (filled in from IOTLB.lockFreeHits for the dump).
    var iotlbHits: UInt64 = 0
    /// Requests that walked the tables (IOTLB misses, ATS requests).
    var walks: UInt64 = 0
    /// Walks that ended in a fault.
    var faults: UInt64 = 0
    /// Requests while DMA remapping was off (GSTS.TES clear): identity, no lookup.
    var untranslated: UInt64 = 0
}
