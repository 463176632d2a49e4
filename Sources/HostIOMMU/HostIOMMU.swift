/// What the model's adapter (in the ABI layer) calls, whichever host mode negotiation chose. Each
/// backend accepts every event and refuses, with a clear error, the ones its mode cannot carry, so a
/// wrong wiring shows up as a message rather than silent stale DMA.
///
/// Order of calls the adapter owes a backend:
/// 1. after negotiation: `NestedBackend.adopt` / `ShadowBackend.attach` per assigned device;
/// 2. GCMD.TE (and root-table mode) changes: `dmaRemappingChanged(enabled:)`;
/// 3. a PASID-cache invalidation (or context change) that re-reads an assigned device's PASID entry:
///    `pasidEntryChanged`;
/// 4. each PASID-based IOTLB descriptor: `enqueue`; each wait descriptor (and a drained queue):
///    `endBatch`, whose outcome decides whether the wait completes or the queue reports an error;
/// 5. each change from the caching-mode replay walk: `shadowChanged(_:for:)`;
/// 6. on device unplug: `NestedBackend.release` / `ShadowBackend.detach`.
public protocol HostIOMMUBackend: AnyObject {
    func pasidEntryChanged(_ binding: PASIDBinding) throws(HostError)
    func enqueue(_ invalidation: PASIDInvalidation)
    func endBatch() -> BatchOutcome
    func shadowChanged(_ change: ShadowChange, for requesterID: RequesterID) throws(HostError)
    func dmaRemappingChanged(enabled: Bool) throws(HostError)
    /// Lines for the state dump.
    func describe() -> String
}

extension NestedBackend: HostIOMMUBackend {
    public func pasidEntryChanged(_ binding: PASIDBinding) throws(HostError) {
        try bind(binding)
    }

    public func shadowChanged(_ change: ShadowChange, for requesterID: RequesterID) throws(HostError) {
        guard devices[requesterID] != nil else { return }
        throw HostError(
            .unsupported,
            "\(requesterID) is nested: guest second-level changes cannot be shadowed beside a bound first level")
    }
}

extension ShadowBackend: HostIOMMUBackend {
    public func pasidEntryChanged(_ binding: PASIDBinding) throws(HostError) {
        try bind(binding)
    }

    /// Shadowing forwards no invalidations: they drive the model's replay, which calls `apply`.
    public func enqueue(_ invalidation: PASIDInvalidation) {}

    public func endBatch() -> BatchOutcome { BatchOutcome() }

    public func shadowChanged(_ change: ShadowChange, for requesterID: RequesterID) throws(HostError) {
        try apply(change, for: requesterID)
    }

    /// The model replays (identity maps while translation is off), so nothing to do here.
    public func dmaRemappingChanged(enabled: Bool) throws(HostError) {}
}
