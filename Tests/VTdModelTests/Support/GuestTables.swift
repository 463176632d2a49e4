// Table builders on GuestMemory: root/context tables (legacy and scalable), PASID
// directories and entries, first- and second-level page tables, nested layouts.
//
//   let guest = GuestMemory()
//   let unit = guest.makeUnit(.scalableFirstLevel)
//   let root = guest.scalableRoot()
//   let tables = root.device(0x0010).firstLevel(pasid: 0)
//   tables.map(iova: 0x1000, to: 0x5000, writable: true)
//   unit.enableTranslation(root)
//   unit.translate(.read(0x1000))  // -> 0x5000
//
// Every builder returns the guest-physical addresses of what it wrote, so a test can then
// corrupt a single bit with `guest.write64`.

@testable import VTdModel

/// Requester id of the device most tests use: 00:02.0.
let testSourceID: UInt16 = 0x0010
/// The same device as the model names it.
let testRequester = RequesterID(rawValue: testSourceID)

enum PageSize: UInt64 {
    case size4K = 12, size2M = 21, size1G = 30
    var bytes: UInt64 { 1 << rawValue }
    /// Level of the entry that maps a page of this size (1 = PTE).
    var level: Int { Int(rawValue - 12) / 9 + 1 }
}

/// Index of `address` in the table at `level` (1 = PTE).
func tableIndex(_ address: UInt64, level: Int) -> UInt64 {
    (address >> UInt64(12 + 9 * (level - 1))) & 0x1FF
}

// MARK: Root and context tables

extension GuestMemory {
    func legacyRoot() -> LegacyRootTable { LegacyRootTable(guest: self, address: allocatePage()) }
    func scalableRoot() -> ScalableRootTable { ScalableRootTable(guest: self, address: allocatePage()) }
}

struct LegacyRootTable {
    let guest: GuestMemory
    let address: UInt64

    func rootEntryAddress(bus: UInt8) -> UInt64 { address + UInt64(bus) * 16 }

    /// The context table of `bus`, linked from the root entry on first use.
    func contextTable(bus: UInt8) -> UInt64 {
        let entry = rootEntryAddress(bus: bus)
        let lo = guest.read64(entry)
        if lo & 1 != 0 { return lo & ~0xFFF }
        let table = guest.allocatePage()
        guest.write64(entry, table | 1)
        return table
    }

    func contextEntryAddress(_ sid: UInt16) -> UInt64 {
        contextTable(bus: UInt8(sid >> 8)) + UInt64(sid & 0xFF) * 16
    }

    /// A present context entry for `sid` (TT 00 multi-level by default) over a new, empty
    /// second-level table of `levels` levels (AW = levels - 2).
    @discardableResult
    func device(_ sid: UInt16 = testSourceID, domain: UInt16 = 1, levels: Int = 4, translationType: UInt64 = 0,
                faultProcessingDisabled: Bool = false) -> LegacyDevice {
        let tables = SecondLevelTables(guest: guest, levels: levels)
        let entry = contextEntryAddress(sid)
        guest.write64(entry, tables.root | translationType << 2 | (faultProcessingDisabled ? 1 << 1 : 0) | 1)
        guest.write64(entry + 8, UInt64(domain) << 8 | UInt64(levels - 2))
        return LegacyDevice(guest: guest, sourceID: sid, contextEntry: entry, secondLevel: tables)
    }
}

struct LegacyDevice {
    let guest: GuestMemory
    let sourceID: UInt16
    let contextEntry: UInt64
    let secondLevel: SecondLevelTables

    func map(iova: UInt64, to output: UInt64, permissions: Permissions = .readWrite, pageSize: PageSize = .size4K) {
        secondLevel.map(iova: iova, to: output, permissions: permissions, pageSize: pageSize)
    }
}

struct ScalableRootTable {
    let guest: GuestMemory
    let address: UInt64

    func rootEntryAddress(bus: UInt8) -> UInt64 { address + UInt64(bus) * 16 }

    /// The context table of `bus` for devfn 0-127 (lower, root lo) or 128-255 (upper, root hi).
    func contextTable(bus: UInt8, upper: Bool) -> UInt64 {
        let half = rootEntryAddress(bus: bus) + (upper ? 8 : 0)
        let raw = guest.read64(half)
        if raw & 1 != 0 { return raw & ~0xFFF }
        let table = guest.allocatePage()
        guest.write64(half, table | 1)
        return table
    }

    func contextEntryAddress(_ sid: UInt16) -> UInt64 {
        let devfn = sid & 0xFF
        return contextTable(bus: UInt8(sid >> 8), upper: devfn >= 0x80) + UInt64(devfn & 0x7F) * 32
    }

    /// A present scalable context entry over a new PASID directory of 2^(pdts + 7) entries.
    /// Defaults are what Linux programs: PDTS 2, RID_PASID 0.
    @discardableResult
    func device(_ sid: UInt16 = testSourceID, pasidDirectorySize pdts: UInt64 = 2, ridPASID: UInt32 = 0,
                ridPrivileged: Bool = false, pasidEnabled: Bool = true, deviceTLB: Bool = false,
                faultProcessingDisabled: Bool = false) -> ScalableDevice {
        // The directory may span several pages (8 bytes an entry).
        let entries = UInt64(1) << (pdts + 7)
        let directory = guest.allocatePage()
        for _ in 1..<max(1, entries * 8 / GuestMemory.pageSize) { _ = guest.allocatePage() }
        let entry = contextEntryAddress(sid)
        guest.write64(entry, directory | pdts << 9 | (pasidEnabled ? 1 << 3 : 0) | (deviceTLB ? 1 << 2 : 0)
                      | (faultProcessingDisabled ? 1 << 1 : 0) | 1)
        guest.write64(entry + 8, UInt64(ridPASID) | (ridPrivileged ? 1 << 20 : 0))
        guest.write64(entry + 16, 0)
        guest.write64(entry + 24, 0)
        return ScalableDevice(guest: guest, sourceID: sid, contextEntry: entry, pasidDirectory: directory)
    }
}

// MARK: PASID structures

/// PASID entry val[2] flags, at their bit positions.
struct PASIDOptions: OptionSet {
    let rawValue: UInt64
    static let supervisorRequests = PASIDOptions(rawValue: 1 << 0)        // SRE
    static let executeRequests = PASIDOptions(rawValue: 1 << 1)           // ERE
    static let writeProtect = PASIDOptions(rawValue: 1 << 4)              // WPE
    static let noExecute = PASIDOptions(rawValue: 1 << 5)                 // NXE (bit 133)
    static let supervisorExecuteProtect = PASIDOptions(rawValue: 1 << 6)  // SMEP
    static let extendedAccessed = PASIDOptions(rawValue: 1 << 7)          // EAFE
    /// What Linux 6.1 sets for a DMA domain on RID_PASID.
    static let linux: PASIDOptions = [.noExecute]
}

struct ScalableDevice {
    let guest: GuestMemory
    let sourceID: UInt16
    let contextEntry: UInt64
    let pasidDirectory: UInt64

    func directoryEntryAddress(_ pasid: UInt32) -> UInt64 { pasidDirectory + UInt64(pasid >> 6) * 8 }

    /// The PASID table entry of `pasid`, its directory entry and table created on first use.
    func pasidEntryAddress(_ pasid: UInt32, directoryFaultProcessingDisabled: Bool = false) -> UInt64 {
        let directoryEntry = directoryEntryAddress(pasid)
        var raw = guest.read64(directoryEntry)
        if raw & 1 == 0 {
            raw = guest.allocatePage() | 1
        }
        raw = raw & ~0b10 | (directoryFaultProcessingDisabled ? 0b10 : 0)
        guest.write64(directoryEntry, raw)
        return (raw & ~0xFFF) + UInt64(pasid & 0x3F) * 64
    }

    /// Writes a whole PASID entry (val[0...7]); returns its address.
    @discardableResult
    func writePASIDEntry(_ pasid: UInt32, _ words: [UInt64], directoryFaultProcessingDisabled: Bool = false) -> UInt64 {
        let entry = pasidEntryAddress(pasid, directoryFaultProcessingDisabled: directoryFaultProcessingDisabled)
        for i in 0..<8 { guest.write64(entry + UInt64(i) * 8, i < words.count ? words[i] : 0) }
        return entry
    }

    static func pasidWord0(pgtt: UInt64, secondLevel: UInt64 = 0, secondLevelLevels: Int = 4, fpd: Bool) -> UInt64 {
        secondLevel | pgtt << 6 | UInt64(secondLevelLevels - 2) << 2 | (fpd ? 1 << 1 : 0) | 1
    }

    /// PGTT 001 over a new first-level table; `levels` 5 sets FLPM = 1.
    @discardableResult
    func firstLevel(pasid: UInt32 = 0, domain: UInt16 = 1, levels: Int = 4, options: PASIDOptions = .linux,
                    faultProcessingDisabled: Bool = false) -> FirstLevelTables {
        let tables = FirstLevelTables(guest: guest, levels: levels)
        writePASIDEntry(pasid, [
            Self.pasidWord0(pgtt: 0b001, fpd: faultProcessingDisabled),
            UInt64(domain),
            tables.root | options.rawValue | (levels == 5 ? 1 << 2 : 0),
        ])
        return tables
    }

    /// PGTT 010 over a new second-level table of `levels` levels (AW = levels - 2).
    @discardableResult
    func secondLevel(pasid: UInt32 = 0, domain: UInt16 = 1, levels: Int = 4, options: PASIDOptions = [],
                     faultProcessingDisabled: Bool = false) -> SecondLevelTables {
        let tables = SecondLevelTables(guest: guest, levels: levels)
        writePASIDEntry(pasid, [
            Self.pasidWord0(pgtt: 0b010, secondLevel: tables.root, secondLevelLevels: levels, fpd: faultProcessingDisabled),
            UInt64(domain),
            options.rawValue,
        ])
        return tables
    }

    /// PGTT 011: a first-level table in guest-physical space, translated by a second level
    /// that maps each first-level table page at GPA = host address + `NestedTables.tableOffset`.
    @discardableResult
    func nested(pasid: UInt32 = 0, domain: UInt16 = 1, firstLevels: Int = 4, secondLevels: Int = 4,
                options: PASIDOptions = .linux, faultProcessingDisabled: Bool = false) -> NestedTables {
        let second = SecondLevelTables(guest: guest, levels: secondLevels)
        let first = FirstLevelTables(guest: guest, levels: firstLevels, nestedIn: second)
        writePASIDEntry(pasid, [
            Self.pasidWord0(pgtt: 0b011, secondLevel: second.root, secondLevelLevels: secondLevels,
                            fpd: faultProcessingDisabled),
            UInt64(domain),
            first.root | options.rawValue | (firstLevels == 5 ? 1 << 2 : 0),
        ])
        return NestedTables(firstLevel: first, secondLevel: second)
    }

    /// PGTT 100 (pass-through), with SRE as Linux programs it.
    @discardableResult
    func passThrough(pasid: UInt32 = 0, domain: UInt16 = 1, options: PASIDOptions = [.supervisorRequests],
                     faultProcessingDisabled: Bool = false) -> UInt64 {
        writePASIDEntry(pasid, [Self.pasidWord0(pgtt: 0b100, fpd: faultProcessingDisabled), UInt64(domain),
                                options.rawValue])
    }
}

// MARK: Page tables

/// First-level (x86 IA-32e) tables. Non-leaf entries are made present, writable and user so
/// the leaf decides; tests change them through `entryAddress`.
struct FirstLevelTables {
    static let present: UInt64 = 1 << 0, writable: UInt64 = 1 << 1, user: UInt64 = 1 << 2
    static let accessed: UInt64 = 1 << 5, dirty: UInt64 = 1 << 6, pageSize: UInt64 = 1 << 7
    static let extendedAccessed: UInt64 = 1 << 10, executeDisable: UInt64 = 1 << 63

    let guest: GuestMemory
    let levels: Int
    /// Host address of the top table.
    let rootHost: UInt64
    /// The top table as the PASID entry names it (guest-physical when nested).
    let root: UInt64
    /// Nested: the second level that maps this table's pages.
    let nestedIn: SecondLevelTables?

    init(guest: GuestMemory, levels: Int, nestedIn: SecondLevelTables? = nil) {
        self.guest = guest
        self.levels = levels
        self.nestedIn = nestedIn
        rootHost = guest.allocatePage()
        root = Self.place(rootHost, in: nestedIn)
    }

    /// Nested: maps a table page's GPA to its host page; returns the GPA.
    private static func place(_ host: UInt64, in second: SecondLevelTables?) -> UInt64 {
        guard let second else { return host }
        let gpa = host + NestedTables.tableOffset
        second.map(iova: gpa, to: host, permissions: .readWrite)
        return gpa
    }

    private func host(_ tableAddress: UInt64) -> UInt64 {
        nestedIn == nil ? tableAddress : tableAddress - NestedTables.tableOffset
    }

    /// Host address of the entry for `iova` at `level`, creating missing tables above it.
    func entryAddress(iova: UInt64, level: Int) -> UInt64 {
        var table = rootHost
        var current = levels
        while current > level {
            let entry = table + tableIndex(iova, level: current) * 8
            var raw = guest.read64(entry)
            if raw & Self.present == 0 {
                let next = Self.place(guest.allocatePage(), in: nestedIn)
                raw = next | Self.present | Self.writable | Self.user
                guest.write64(entry, raw)
            }
            table = host(raw & 0x000F_FFFF_FFFF_F000)
            current -= 1
        }
        return table + tableIndex(iova, level: level) * 8
    }

    /// Maps `iova` to `output` (guest-physical when nested). Leaf bits: P, R/W, U/S, PS, XD,
    /// plus `extraBits` (A, D, ...).
    func map(iova: UInt64, to output: UInt64, writable: Bool = true, user: Bool = true,
             executeDisable: Bool = false, pageSize: PageSize = .size4K, extraBits: UInt64 = 0) {
        var leaf = output | Self.present | extraBits
        if writable { leaf |= Self.writable }
        if user { leaf |= Self.user }
        if executeDisable { leaf |= Self.executeDisable }
        if pageSize != .size4K { leaf |= Self.pageSize }
        guest.write64(entryAddress(iova: iova, level: pageSize.level), leaf)
    }

    /// Linux's leaf for a DMA mapping: P|R/W|U/S|A|D with XD set (0x8000_0000_xxxx_x067).
    func mapLikeLinux(iova: UInt64, to output: UInt64) {
        map(iova: iova, to: output, executeDisable: true, extraBits: Self.accessed | Self.dirty)
    }

    func entry(iova: UInt64, level: Int) -> UInt64 { guest.read64(entryAddress(iova: iova, level: level)) }

    /// Rewrites the entry for `iova` at `level`.
    func update(iova: UInt64, level: Int, _ change: (UInt64) -> UInt64) {
        let address = entryAddress(iova: iova, level: level)
        guest.write64(address, change(guest.read64(address)))
    }
}

/// Second-level (VT-d format) tables. Non-leaf entries get R|W|X so the leaf decides.
struct SecondLevelTables {
    static let read: UInt64 = 1 << 0, write: UInt64 = 1 << 1, execute: UInt64 = 1 << 2
    static let pageSize: UInt64 = 1 << 7, snoop: UInt64 = 1 << 11, transientMapping: UInt64 = 1 << 62

    let guest: GuestMemory
    let levels: Int
    let root: UInt64

    init(guest: GuestMemory, levels: Int) {
        self.guest = guest
        self.levels = levels
        root = guest.allocatePage()
    }

    static func bits(_ permissions: Permissions) -> UInt64 {
        (permissions.contains(.read) ? read : 0) | (permissions.contains(.write) ? write : 0)
            | (permissions.contains(.execute) ? execute : 0)
    }

    func entryAddress(iova: UInt64, level: Int) -> UInt64 {
        var table = root
        var current = levels
        while current > level {
            let entry = table + tableIndex(iova, level: current) * 8
            var raw = guest.read64(entry)
            if raw & (Self.read | Self.write) == 0 {
                raw = guest.allocatePage() | Self.read | Self.write | Self.execute
                guest.write64(entry, raw)
            }
            table = raw & 0x000F_FFFF_FFFF_F000
            current -= 1
        }
        return table + tableIndex(iova, level: level) * 8
    }

    func map(iova: UInt64, to output: UInt64, permissions: Permissions = .readWrite, pageSize: PageSize = .size4K,
             extraBits: UInt64 = 0) {
        var leaf = output | Self.bits(permissions) | extraBits
        if pageSize != .size4K { leaf |= Self.pageSize }
        guest.write64(entryAddress(iova: iova, level: pageSize.level), leaf)
    }

    func entry(iova: UInt64, level: Int) -> UInt64 { guest.read64(entryAddress(iova: iova, level: level)) }

    func update(iova: UInt64, level: Int, _ change: (UInt64) -> UInt64) {
        let address = entryAddress(iova: iova, level: level)
        guest.write64(address, change(guest.read64(address)))
    }
}

struct NestedTables {
    /// First-level table pages sit at GPA = host + this (bit 38: inside a 4-level second level).
    static let tableOffset: UInt64 = 1 << 38

    let firstLevel: FirstLevelTables
    let secondLevel: SecondLevelTables

    /// IOVA -> GPA in the first level, GPA -> host in the second.
    func map(iova: UInt64, guestPhysical: UInt64, host: UInt64, writable: Bool = true) {
        firstLevel.map(iova: iova, to: guestPhysical, writable: writable)
        secondLevel.map(iova: guestPhysical, to: host, permissions: writable ? .readWrite : .read)
    }
}

// MARK: Units and requests

extension VTdConfiguration {
    /// QEMU's defaults: legacy mode.
    static var legacy: VTdConfiguration { VTdConfiguration() }
    /// x-scalable-mode=on,x-flts=on: what the Linux guest in VTD-FACTS ran on.
    static var scalableFirstLevel: VTdConfiguration {
        var c = VTdConfiguration()
        c.scalableMode = true
        c.firstLevel = true
        return c
    }
    /// x-scalable-mode=on: second level only.
    static var scalableSecondLevel: VTdConfiguration {
        var c = VTdConfiguration()
        c.scalableMode = true
        return c
    }
    /// Every PGTT: first level, second level, nested, pass-through.
    static var scalableNested: VTdConfiguration {
        var c = scalableFirstLevel
        c.secondLevelWithFirstLevel = true
        c.nesting = true
        return c
    }
    func with(_ change: (inout VTdConfiguration) -> Void) -> VTdConfiguration {
        var c = self
        change(&c)
        return c
    }
}

extension GuestMemory {
    func makeUnit(_ configuration: VTdConfiguration = .legacy) -> VTdUnit {
        try! VTdUnit(configuration: configuration, platform: self)
    }
}

extension VTdUnit {
    /// What a driver does to turn remapping on: RTADDR (TTM 01 for scalable), GCMD.SRTP,
    /// then GCMD.TE, through the register window.
    func enableTranslation(rootTable: UInt64, scalable: Bool) {
        mmioWrite(offset: Reg.rootTableAddress, value: rootTable | (scalable ? 1 << 10 : 0), width: 8)
        let status = UInt32(truncatingIfNeeded: mmioRead(offset: Reg.globalStatus, width: 4))
        let persistent = status & ~(GlobalCommand.setRootTablePointer.rawValue
                                    | GlobalCommand.setInterruptRemappingTablePointer.rawValue)
        mmioWrite(offset: Reg.globalCommand, value: UInt64(persistent | GlobalCommand.setRootTablePointer.rawValue), width: 4)
        mmioWrite(offset: Reg.globalCommand, value: UInt64(persistent | GlobalCommand.translationEnable.rawValue), width: 4)
    }

    func enableTranslation(_ root: LegacyRootTable) { enableTranslation(rootTable: root.address, scalable: false) }
    func enableTranslation(_ root: ScalableRootTable) { enableTranslation(rootTable: root.address, scalable: true) }

    /// GCMD.TE = 0.
    func disableTranslation() {
        let status = UInt32(truncatingIfNeeded: mmioRead(offset: Reg.globalStatus, width: 4))
        let persistent = status & ~(GlobalCommand.setRootTablePointer.rawValue
                                    | GlobalCommand.setInterruptRemappingTablePointer.rawValue
                                    | GlobalCommand.translationEnable.rawValue)
        mmioWrite(offset: Reg.globalCommand, value: UInt64(persistent), width: 4)
    }

    /// Unmasks the fault event so recorded faults raise MSIs (FECTL.IM = 0).
    func armFaultEvent(address: UInt32 = 0xFEE0_0000, data: UInt32 = 0x41) {
        mmioWrite(offset: Reg.faultEventData, value: UInt64(data), width: 4)
        mmioWrite(offset: Reg.faultEventAddress, value: UInt64(address), width: 4)
        mmioWrite(offset: Reg.faultEventControl, value: 0, width: 4)
    }

    /// The fault recording register `index` as the guest reads it (low, high words).
    func faultRecord(_ index: Int = 0) -> FaultRecordingRegister {
        let base = Reg.faultRecordingBase + index * Reg.faultRecordingSize
        return FaultRecordingRegister(low: mmioRead(offset: base, width: 8), high: mmioRead(offset: base + 8, width: 8))
    }

    /// FSTS.
    var faultStatus: FaultStatus {
        FaultStatus(rawValue: UInt32(truncatingIfNeeded: mmioRead(offset: Reg.faultStatus, width: 4)))
    }
}

extension TranslationRequest {
    static func read(_ address: UInt64, sid: RequesterID = testRequester, pasid: PASID? = nil,
                     privileged: Bool = false) -> TranslationRequest {
        TranslationRequest(sourceID: sid, pasid: pasid, address: address, access: .read, privileged: privileged)
    }
    static func write(_ address: UInt64, sid: RequesterID = testRequester, pasid: PASID? = nil,
                      privileged: Bool = false) -> TranslationRequest {
        TranslationRequest(sourceID: sid, pasid: pasid, address: address, access: .write, privileged: privileged)
    }
    static func execute(_ address: UInt64, sid: RequesterID = testRequester, pasid: PASID?,
                        privileged: Bool = false) -> TranslationRequest {
        TranslationRequest(sourceID: sid, pasid: pasid, address: address, access: .execute, privileged: privileged)
    }
}

extension TranslationOutcome {
    var translation: Translation? {
        if case .translated(let t) = self { return t }
        return nil
    }
    var faultReason: FaultReason? {
        if case .fault(let r) = self { return r }
        return nil
    }
    /// The output address, nil on a fault.
    var address: UInt64? { translation?.translated }
}

// MARK: Invalidation, as a driver issues it

extension VTdUnit {
    /// Register-based context-cache invalidation (CCMD): granularity 1 global, 2 domain, 3 device.
    func invalidateContextCache(granularity: UInt64 = 1, domain: UInt16 = 0, sourceID: UInt16 = 0,
                                functionMask: UInt64 = 0) {
        let value = 1 << 63 | granularity << 61 | functionMask << 32 | UInt64(sourceID) << 16 | UInt64(domain)
        mmioWrite(offset: Reg.contextCommand, value: value, width: 8)
    }

    /// Register-based IOTLB invalidation: granularity 1 global, 2 domain.
    func invalidateIOTLB(granularity: UInt64 = 1, domain: UInt16 = 0) {
        mmioWrite(offset: Reg.iotlbInvalidate, value: 1 << 63 | granularity << 60 | UInt64(domain) << 32, width: 8)
    }

    /// A PASID-cache invalidation descriptor's effect (queued invalidation only).
    func invalidatePASIDCache(_ scope: PASIDCacheInvalidationScope) {
        state.withLock { s in
            s.caches.pasid.invalidate(scope)
            s.caches.invalidated()
        }
    }
}
