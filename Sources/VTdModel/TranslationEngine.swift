// The translation of one request, from the root table to the output page, reading guest
// memory through `Platform` and touching no unit state: translate runs it unlocked, and the
// reference walker runs it with no cache hints at all.
//
//   legacy:   root entry -> context entry (TT) -> second-level walk | pass-through
//   scalable: root entry half -> context entry -> PASID directory -> PASID entry (PGTT)
//             -> first-level | second-level | nested | pass-through walk

/// Walks throw the spec's reason code itself: there is nothing more to say about a fault.
extension FaultReason: Error {}

/// Everything one walk learned: the answer, whether an FPD bit applies to its fault, and the
/// entries worth caching (present and valid, read from memory this time).
struct WalkResult {
    var outcome: TranslationOutcome
    /// An FPD bit was seen on the way to the fault (suppresses qualified faults).
    var faultProcessingDisabled = false
    var context: CachedContext?
    var pasidEntry: CachedPASIDEntry?
    var iotlbEntry: IOTLBEntry?

    init(outcome: TranslationOutcome = .fault(.rootEntryNotPresent)) { self.outcome = outcome }

    /// Whether the fault, if any, goes to the fault recording registers.
    func recordsFault(for request: TranslationRequest) -> Bool {
        guard case .fault(let reason) = outcome, request.recordsFaults else { return false }
        if request.isTranslationRequest && !reason.isRecordedForTranslationRequests { return false }
        return !(faultProcessingDisabled && reason.isQualified)
    }
}

/// What translates one (sid, pasid), as its context and PASID entries say.
enum DeviceTables: Equatable {
    case passThrough
    case secondLevel(root: UInt64, levels: Int, domain: DomainID)
    case firstLevel(root: UInt64, levels: Int, domain: DomainID)
    case nested(domain: DomainID)
}

/// Cached entries translate found under the lock, offered to the walk.
struct CacheHints {
    var context: CachedContext?
    var pasidEntry: CachedPASIDEntry?
}

struct TranslationEngine: Sendable {
    let limits: TranslationLimits
    let rootReserved: RootEntry.ReservedBits
    let contextReserved: ContextEntry.ReservedBits
    let scalableContextReserved: ScalableContextEntry.ReservedBits
    let pasidDirectoryReserved: PASIDDirectoryEntry.ReservedBits
    let pasidEntryReserved: PASIDEntry.ReservedBits
    let firstLevelReserved: FirstLevelEntry.ReservedBits
    let secondLevelReserved: SecondLevelEntry.ReservedBits

    init(configuration: VTdConfiguration) {
        let limits = TranslationLimits(configuration: configuration)
        self.limits = limits
        rootReserved = .init(limits)
        contextReserved = .init(limits)
        scalableContextReserved = .init(limits)
        pasidDirectoryReserved = .init(limits)
        pasidEntryReserved = .init(limits)
        firstLevelReserved = .init(limits)
        secondLevelReserved = .init(limits)
    }

    /// DMA without PASID may not be remapped into the interrupt range.
    static var interruptRange: ClosedRange<UInt64> { AddressRanges.interrupt }

    @inline(__always)
    static func overlapsInterruptRange(page: UInt64, shift: UInt8) -> Bool {
        let last = page &+ ((1 << UInt64(shift)) - 1)
        return page <= interruptRange.upperBound && last >= interruptRange.lowerBound
    }

    /// Requests as the hardware sees them: execute requests are reads that need execute
    /// rights, and only requests with a PASID prefix can ask to execute or be privileged.
    static func normalized(_ request: TranslationRequest) -> TranslationRequest {
        var r = request
        r.access = normalized(r.access, hasPASID: r.pasid != nil)
        if r.pasid == nil { r.privileged = false }
        return r
    }

    @inline(__always)
    static func normalized(_ access: Permissions, hasPASID: Bool) -> Permissions {
        var access = access
        if access.contains(.execute) { access.insert(.read) }
        if !hasPASID { access.remove(.execute) }
        return access
    }

    static func identity(_ address: UInt64) -> Translation {
        Translation(translated: address, pageMask: ~0xFFF, permissions: Permissions.readWrite.union(.execute), identity: true)
    }

    func walk(_ request: TranslationRequest, root: RootTablePointer, platform: any Platform,
              hints: CacheHints = CacheHints()) -> WalkResult {
        var result = WalkResult()
        do throws(FaultReason) {
            // TTM 10/11: no table format to walk, every request is blocked.
            if root.blocksAllDMA { throw .smRootTableAddressInvalid }
            let translation = root.isScalable
                ? try walkScalable(request, root: root, platform: platform, hints: hints, into: &result)
                : try walkLegacy(request, root: root, platform: platform, hints: hints, into: &result)
            result.outcome = .translated(translation)
        } catch {
            result.outcome = .fault(error)
            result.iotlbEntry = nil
        }
        return result
    }

    // MARK: Legacy mode

    private func walkLegacy(_ r: TranslationRequest, root: RootTablePointer, platform: any Platform,
                            hints: CacheHints, into result: inout WalkResult) throws(FaultReason) -> Translation {
        // A request with a PASID needs scalable-mode tables.
        if r.pasid != nil { throw .smTTMZeroForPASIDRequest }
        let context: ContextEntry
        if case .legacy(let cached)? = hints.context {
            context = cached
        } else {
            context = try readLegacyContext(r.sourceID, root: root, platform: platform, into: &result)
            result.context = .legacy(context)
        }
        result.faultProcessingDisabled = context.faultProcessingDisabled

        switch context.translationType {
        // TT 10b passes untranslated requests through and blocks translation requests (spec
        // 9.3, TT): the device must not cache an identity it would then send as translated.
        case .passThrough where r.isTranslationRequest, .multiLevel where r.isTranslationRequest:
            throw .contextEntryBlockedTranslationRequest
        case .passThrough:
            return Self.identity(r.address)
        default:
            break
        }
        let walk = SecondLevelWalk(root: context.secondLevelPointer, levels: context.levels)
        if r.address >> UInt64(min(walk.inputWidth, limits.maximumGuestAddressWidth)) != 0 {
            throw .addressBeyondMGAW
        }
        let mapping: SecondLevelMapping
        do throws(SecondLevelFault) {
            mapping = try walk.translate(r.address, access: r.access, platform: platform, reserved: secondLevelReserved)
        } catch {
            switch error {
            case .beyondAddressWidth: throw .addressBeyondMGAW
            case .rootAccessError, .accessError: throw .pagingEntryAccessError
            case .reserved: throw .pagingEntryReserved
            // No present bit at the second level: a missing entry denies the access.
            case .notPresent, .writeDenied, .readDenied, .executeDenied:
                throw r.access.contains(.write) ? .writeDenied : .readDenied
            }
        }
        if Self.overlapsInterruptRange(page: mapping.outputPage, shift: mapping.pageShift) {
            throw .interruptAddressRange
        }
        return cacheable(r, effectivePASID: nil, domain: context.domainID, page: mapping.outputPage,
                         shift: mapping.pageShift, permissions: mapping.permissions, into: &result)
    }

    private func readLegacyContext(_ sourceID: RequesterID, root: RootTablePointer, platform: any Platform,
                                   into result: inout WalkResult) throws(FaultReason) -> ContextEntry {
        let bus = UInt64(sourceID.bus), devfn = UInt64(sourceID.devfn)
        guard let rootEntry = platform.readRootEntry(root.address + bus * RootEntry.size) else {
            throw .rootTableAccessError
        }
        let half = rootEntry.lower
        guard half.isPresent else { throw .rootEntryNotPresent }
        if rootEntry.hasReservedBits(in: half, rootReserved, scalable: false) { throw .rootEntryReserved }
        guard let context = platform.readContextEntry(half.contextTablePointer + devfn * ContextEntry.size) else {
            throw .contextTableAccessError
        }
        guard context.isPresent else {
            result.faultProcessingDisabled = context.faultProcessingDisabled
            throw .contextEntryNotPresent
        }
        if context.hasReservedBits(contextReserved) { throw .contextEntryReserved }
        result.faultProcessingDisabled = context.faultProcessingDisabled
        switch context.translationType {
        case .reserved: throw .contextEntryInvalid
        case .deviceTLB where !limits.deviceTLB: throw .contextEntryInvalid
        case .passThrough where !limits.passThrough: throw .contextEntryInvalid
        case .multiLevel, .deviceTLB, .passThrough:
            // AW must be a width SAGAW offers whatever TT says: with pass-through it names no
            // table, but a value the unit lacks is still a programming error (QEMU checks it
            // for every TT; Linux programs the largest supported width for pass-through).
            if !limits.supportsSecondLevel(levels: context.levels) { throw .contextEntryInvalid }
        }
        return context
    }

    // MARK: Scalable mode

    private func walkScalable(_ r: TranslationRequest, root: RootTablePointer, platform: any Platform,
                              hints: CacheHints, into result: inout WalkResult) throws(FaultReason) -> Translation {
        let found = try lookupPASIDEntry(sourceID: r.sourceID, pasid: r.pasid,
                                         translationRequest: r.isTranslationRequest, root: root,
                                         platform: platform, hints: hints, into: &result)
        let entry = found.entry.entry
        result.faultProcessingDisabled = found.context.faultProcessingDisabled
            || found.entry.directoryFaultProcessingDisabled || entry.faultProcessingDisabled
        // Requests without PASID use RID_PASID, with RID_PRIV as their privilege.
        let privileged = r.pasid != nil ? r.privileged : found.context.ridPrivileged
        if privileged && !entry.supervisorRequests { throw .pasidEntrySREClear }
        if r.access.contains(.execute) && !entry.executeRequests { throw .pasidEntryEREClear }

        let mapping: (page: UInt64, shift: UInt8, permissions: Permissions)
        switch found.type {
        case .passThrough:
            return Self.identity(r.address)
        case .secondLevel:
            mapping = try walkSecondLevel(r, entry: entry, platform: platform)
        case .firstLevel, .nested:
            mapping = try walkFirstLevel(r, entry: entry, nested: found.type == .nested, privileged: privileged,
                                         platform: platform)
        }
        var permissions = mapping.permissions
        if !entry.executeRequests { permissions.remove(.execute) }
        if r.pasid == nil && Self.overlapsInterruptRange(page: mapping.page, shift: mapping.shift) {
            throw .smInterruptAddressRange
        }
        return cacheable(r, effectivePASID: found.pasid, domain: entry.domainID, page: mapping.page,
                         shift: mapping.shift, permissions: permissions, nested: found.type == .nested,
                         into: &result)
    }

    /// PGTT 010b: the second-level tables alone, with scalable mode's fault reasons.
    private func walkSecondLevel(_ r: TranslationRequest, entry: PASIDEntry, platform: any Platform)
        throws(FaultReason) -> (page: UInt64, shift: UInt8, permissions: Permissions) {
        let walk = SecondLevelWalk(root: entry.secondLevelPointer, levels: entry.secondLevelLevels,
                                   executeEnable: entry.secondLevelExecuteEnable)
        if r.address >> UInt64(limits.maximumGuestAddressWidth) != 0 { throw .addressBeyondHardwareMax }
        do throws(SecondLevelFault) {
            let m = try walk.translate(r.address, access: r.access, platform: platform, reserved: secondLevelReserved)
            return (m.outputPage, m.pageShift, m.permissions)
        } catch {
            switch error {
            case .beyondAddressWidth: throw .slAddressBeyondMax
            case .rootAccessError: throw .slRootInvalid
            case .accessError: throw .slEntryAccessError
            case .reserved: throw .slEntryReserved
            case .notPresent: throw .slEntryPermissionDenied
            case .readDenied: throw .smReadDenied
            case .writeDenied: throw .smWriteDenied
            case .executeDenied: throw .executeDenied
            }
        }
    }

    /// PGTT 001b and 011b: first-level tables, their table reads through the second level when nested.
    private func walkFirstLevel(_ r: TranslationRequest, entry: PASIDEntry, nested: Bool, privileged: Bool,
                                platform: any Platform)
        throws(FaultReason) -> (page: UInt64, shift: UInt8, permissions: Permissions) {
        var stage: NestedStage?
        if nested {
            stage = NestedStage(
                secondLevel: SecondLevelWalk(root: entry.secondLevelPointer, levels: entry.secondLevelLevels,
                                             executeEnable: entry.secondLevelExecuteEnable),
                maximumGuestAddressWidth: limits.maximumGuestAddressWidth, reserved: secondLevelReserved)
        }
        let walk = FirstLevelWalk(
            root: entry.firstLevelPointer, levels: entry.firstLevelLevels,
            writeProtect: entry.writeProtect, noExecute: entry.noExecute,
            supervisorExecuteProtect: entry.supervisorExecuteProtect,
            extendedAccessed: entry.extendedAccessed, nested: stage)
        let m = try walk.translate(r.address, access: r.access, privileged: privileged,
                                   platform: platform, reserved: firstLevelReserved)
        return (m.outputPage, m.pageShift, m.permissions)
    }

    /// What the one way from a scalable root to a PASID entry found.
    struct PASIDLookup {
        let context: ScalableContextEntry
        /// The PASID the entry is for: the request's, or RID_PASID for requests without one.
        let pasid: PASID
        let entry: CachedPASIDEntry
        /// Validated when the entry was read (cached entries were too).
        let type: PASIDEntry.TranslationType
    }

    /// root → scalable context → PASID (RID_PASID without one) → PDTS bound → PASID entry, with
    /// the spec's fault at each step. Translation, replay and the host bindings all come here;
    /// `hints` reuse cached entries; `result.context` holds the context once read, even on a fault.
    @inline(__always)  // the translate miss path: no PASIDLookup copy through a call
    func lookupPASIDEntry(sourceID: RequesterID, pasid: PASID?, translationRequest: Bool = false,
                          root: RootTablePointer, platform: any Platform, hints: CacheHints = CacheHints(),
                          into result: inout WalkResult) throws(FaultReason) -> PASIDLookup {
        let context: ScalableContextEntry
        if case .scalable(let cached)? = hints.context {
            context = cached
        } else {
            context = try readScalableContext(sourceID, root: root, platform: platform, into: &result)
            result.context = .scalable(context)
        }
        result.faultProcessingDisabled = context.faultProcessingDisabled
        if pasid != nil && !context.pasidEnabled { throw .smContextEntryPASIDEClear }
        if translationRequest && !context.deviceTLBEnabled { throw .smContextEntryDTEClear }
        let effective = pasid ?? context.ridPASID
        // PDTS bounds the directory (QEMU does not check it and reads past the directory).
        if UInt64(effective.rawValue >> 6) >= UInt64(context.pasidDirectoryEntries) || effective.rawValue > PASID.maximum {
            throw pasid == nil ? .smRIDPASIDError : .smPASIDTooLarge
        }
        let cached: CachedPASIDEntry
        if let hint = hints.pasidEntry, hint.sourceID == sourceID, hint.pasid == effective,
           hint.directory == context.pasidDirectoryPointer {
            cached = hint
        } else {
            cached = try readPASIDEntry(sourceID, pasid: effective, directory: context.pasidDirectoryPointer,
                                        platform: platform, into: &result)
            result.pasidEntry = cached
        }
        guard let type = cached.entry.translationType else { throw .pasidEntryInvalid }
        return PASIDLookup(context: context, pasid: effective, entry: cached, type: type)
    }

    func readScalableContext(_ sourceID: RequesterID, root: RootTablePointer, platform: any Platform,
                             into result: inout WalkResult) throws(FaultReason) -> ScalableContextEntry {
        let bus = UInt64(sourceID.bus), devfn = sourceID.devfn
        guard let rootEntry = platform.readRootEntry(root.address + bus * RootEntry.size) else {
            throw .smRootEntryAccessError
        }
        let half = rootEntry.half(forDevfn: devfn, scalable: true)
        guard half.isPresent else { throw .smRootEntryNotPresent }
        if rootEntry.hasReservedBits(in: half, rootReserved, scalable: true) { throw .smRootEntryReserved }
        let index = UInt64(devfn & 0x7F)
        guard let context = platform.readScalableContextEntry(
            half.contextTablePointer + index * ScalableContextEntry.size) else {
            throw .smContextEntryAccessError
        }
        guard context.isPresent else {
            result.faultProcessingDisabled = context.faultProcessingDisabled
            throw .smContextEntryNotPresent
        }
        if context.hasReservedBits(scalableContextReserved) { throw .smContextEntryReserved }
        return context
    }

    private func readPASIDEntry(_ sourceID: RequesterID, pasid: PASID, directory: UInt64, platform: any Platform,
                                into result: inout WalkResult) throws(FaultReason) -> CachedPASIDEntry {
        let directoryAddress = directory + PASIDDirectoryEntry.index(of: pasid) * PASIDDirectoryEntry.size
        guard let directoryEntry = platform.readPASIDDirectoryEntry(directoryAddress) else {
            throw .pasidDirectoryAccessError
        }
        guard directoryEntry.isPresent else {
            result.faultProcessingDisabled = result.faultProcessingDisabled || directoryEntry.faultProcessingDisabled
            throw .pasidDirectoryEntryNotPresent
        }
        if directoryEntry.hasReservedBits(pasidDirectoryReserved) { throw .pasidDirectoryEntryReserved }
        result.faultProcessingDisabled = result.faultProcessingDisabled || directoryEntry.faultProcessingDisabled

        let entryAddress = directoryEntry.pasidTablePointer + PASIDEntry.index(of: pasid) * PASIDEntry.size
        guard let entry = platform.readPASIDEntry(entryAddress) else { throw .pasidTableAccessError }
        guard entry.isPresent else {
            result.faultProcessingDisabled = result.faultProcessingDisabled || entry.faultProcessingDisabled
            throw .pasidEntryNotPresent
        }
        if entry.hasReservedBits(pasidEntryReserved) { throw .pasidEntryReserved }
        result.faultProcessingDisabled = result.faultProcessingDisabled || entry.faultProcessingDisabled
        try validate(entry)
        return CachedPASIDEntry(sourceID: sourceID, pasid: pasid, directory: directory,
                                directoryFaultProcessingDisabled: directoryEntry.faultProcessingDisabled,
                                entry: entry)
    }

    /// PGTT per entry (not one switch for the unit): each type only where this unit has it.
    private func validate(_ entry: PASIDEntry) throws(FaultReason) {
        guard let type = entry.translationType else { throw .pasidEntryInvalid }
        let supported: Bool
        switch type {
        case .firstLevel: supported = limits.firstLevel
        case .secondLevel: supported = limits.secondLevel
        case .nested: supported = limits.nested
        case .passThrough: supported = limits.passThrough
        }
        guard supported else { throw .pasidEntryInvalid }
        if type == .secondLevel || type == .nested {
            guard limits.supportsSecondLevel(levels: entry.secondLevelLevels) else { throw .pasidEntryInvalid }
        }
        if type == .firstLevel || type == .nested {
            // FLPM 1 (five levels) needs CAP.FS5LP; 2 and 3 are reserved encodings.
            switch entry.firstLevelPagingMode {
            case 0: break
            case 1 where limits.firstLevel5Level: break
            default: throw .pasidEntryInvalid
            }
        }
    }

    // MARK: Device setup (replay, host backends)

    /// The tables that translate (sid, pasid) now, read without walking them; the fault a
    /// request would meet on the way otherwise.
    func deviceTables(sourceID: RequesterID, pasid: PASID?, root: RootTablePointer,
                      platform: any Platform) -> Result<DeviceTables, FaultReason> {
        var scratch = WalkResult()
        do throws(FaultReason) {
            if root.blocksAllDMA { throw .smRootTableAddressInvalid }
            if !root.isScalable {
                if pasid != nil { throw .smTTMZeroForPASIDRequest }
                let context = try readLegacyContext(sourceID, root: root, platform: platform, into: &scratch)
                if context.translationType == .passThrough { return .success(.passThrough) }
                return .success(.secondLevel(root: context.secondLevelPointer, levels: context.levels,
                                             domain: context.domainID))
            }
            let found = try lookupPASIDEntry(sourceID: sourceID, pasid: pasid, root: root, platform: platform,
                                             into: &scratch)
            let entry = found.entry.entry
            switch found.type {
            case .passThrough: return .success(.passThrough)
            case .secondLevel:
                return .success(.secondLevel(root: entry.secondLevelPointer, levels: entry.secondLevelLevels,
                                             domain: entry.domainID))
            case .firstLevel:
                return .success(.firstLevel(root: entry.firstLevelPointer, levels: entry.firstLevelLevels,
                                            domain: entry.domainID))
            case .nested:
                return .success(.nested(domain: entry.domainID))
            }
        } catch {
            return .failure(error)
        }
    }

    /// The PASID entry behind (sid, pasid) for a host binding (HostBinding.swift): the walk of
    /// `deviceTables`, keeping the first-level fields the host's stage-1 needs.
    func hostPASIDEntry(sourceID: RequesterID, pasid: PASID?, root: RootTablePointer,
                        platform: any Platform) -> HostPASIDEntry {
        var scratch = WalkResult()
        do throws(FaultReason) {
            if root.blocksAllDMA { throw .smRootTableAddressInvalid }
            if !root.isScalable { throw .smTTMZeroForPASIDRequest }
            let found = try lookupPASIDEntry(sourceID: sourceID, pasid: pasid, root: root, platform: platform,
                                             into: &scratch)
            let entry = found.entry.entry
            let translation: HostPASIDEntry.Translation
            switch found.type {
            case .firstLevel:
                translation = .firstLevel(pointer: entry.firstLevelPointer, fiveLevel: entry.firstLevelLevels == 5,
                                          supervisorRequests: entry.supervisorRequests,
                                          writeProtect: entry.writeProtect, extendedAccessed: entry.extendedAccessed)
            case .secondLevel: translation = .secondLevel
            case .nested: translation = .nested
            case .passThrough: translation = .passThrough
            }
            return HostPASIDEntry(pasid: found.pasid, ridPASID: found.context.ridPASID, domainID: entry.domainID,
                                  translation: translation)
        } catch {
            // The context entry, when it was read, still names RID_PASID.
            var ridPASID: PASID = 0
            if case .scalable(let context)? = scratch.context { ridPASID = context.ridPASID }
            return HostPASIDEntry(pasid: pasid ?? ridPASID, ridPASID: ridPASID, domainID: 0, translation: .blocked(error))
        }
    }

    /// PASIDs other than 0 with a present PASID entry for `sourceID` (context entry present,
    /// PASIDE set), in order, at most `limit`: what a host binding must look at when it cannot
    /// know which PASIDs the guest bound (a loaded state, a global PASID-cache invalidation).
    /// Reads directory entries within PDTS and the first word of each entry of present tables;
    /// nothing is validated or walked.
    func presentPASIDs(sourceID: RequesterID, root: RootTablePointer, platform: any Platform, limit: Int) -> [PASID] {
        guard root.isScalable, !root.blocksAllDMA else { return [] }
        var scratch = WalkResult()
        guard let context = try? readScalableContext(sourceID, root: root, platform: platform, into: &scratch),
              context.pasidEnabled else { return [] }
        var found: [PASID] = []
        for index in 0..<UInt64(context.pasidDirectoryEntries) {
            let address = context.pasidDirectoryPointer &+ index * PASIDDirectoryEntry.size
            guard let directory = platform.readPASIDDirectoryEntry(address), directory.isPresent else { continue }
            for slot in 0..<UInt64(64) where index != 0 || slot != 0 {
                guard let word = platform.readGuest64(directory.pasidTablePointer &+ slot * PASIDEntry.size),
                      word & 1 != 0 else { continue }
                found.append(PASID(rawValue: UInt32(index << 6 | slot)))
                if found.count >= limit { return found }
            }
        }
        return found
    }

    // MARK: Output

    /// The translation for `r`, and the IOTLB entry that caches it: keyed by the request's
    /// own PASID and privilege, invalidated through `effectivePASID` (RID_PASID for requests
    /// without PASID in scalable mode).
    private func cacheable(_ r: TranslationRequest, effectivePASID: PASID?, domain: DomainID, page: UInt64,
                           shift: UInt8, permissions: Permissions, nested: Bool = false,
                           into result: inout WalkResult) -> Translation {
        let offsetMask: UInt64 = (1 << UInt64(shift)) - 1
        result.iotlbEntry = IOTLBEntry(domainID: domain, sourceID: r.sourceID, pasid: r.pasid,
                                       effectivePASID: effectivePASID, privileged: r.privileged,
                                       inputPage: r.address & ~offsetMask, outputPage: page,
                                       pageShift: shift, permissions: permissions, nested: nested)
        return Translation(translated: page | (r.address & offsetMask), pageMask: ~offsetMask,
                           permissions: permissions)
    }
}
