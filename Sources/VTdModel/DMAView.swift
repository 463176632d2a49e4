// Which view of memory a device's requests without PASID may be given: the unit's answer for a
// host that can show a device guest memory directly (QEMU: an alias of system memory instead
// of the IOMMU region), so that untranslated DMA costs no translate call.
//
// The answer holds until the next `contextChanged` event that names the device or every
// device: every change that can alter it (GCMD.TE, GCMD.SRTP, context- and PASID-cache
// invalidations, reset, a loaded state) sends one, and the host asks again then.

public enum DMAView: Equatable, Sendable {
    /// Every request goes through `translate` (it may fault; faults are recorded there).
    case translated
    /// Every request without PASID is passed through untranslated, whatever its address or
    /// access: DMA remapping is off, or the device's context entry (legacy TT 10b) or RID_PASID
    /// entry (scalable PGTT 100b) passes it through. The interrupt range is still interrupts.
    case untranslated
}

extension VTdUnit {
    /// The view for requests without PASID of `sourceID`, read from the tables as guest memory
    /// holds them now (no cache is consulted or filled, no fault recorded; a route found is noted
    /// for the state dump, where a device that never calls `translate` would be missing). Malformed or absent tables answer `.translated`, so the
    /// device's DMA meets its fault in `translate`.
    public func dmaView(sourceID: RequesterID) -> DMAView {
        let (enabled, root) = state.withLock { ($0.translationEnabled, $0.translationRootTable) }
        guard enabled else { return .untranslated }
        // A pass-through entry answers identity before anything depends on the address or the
        // access, so one probe of address 0 speaks for every request without PASID.
        let probe = TranslationRequest(sourceID: sourceID, address: 0, access: [.read, .write], recordsFaults: false)
        let result = translationEngine.walk(probe, root: root, platform: platform)
        guard case .translated(let translation) = result.outcome else { return .translated }
        state.withLock { $0.noteWalk(probe, hints: CacheHints(), result: result) }
        return translation.identity ? .untranslated : .translated
    }
}
