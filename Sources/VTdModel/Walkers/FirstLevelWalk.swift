// First-level walk (VT-d 3.6, PGTT 001 and the first stage of 011): x86 IA-32e paging,
// 4 or 5 levels, canonical input, U/S, R/W with WPE, XD with NXE, and accessed/dirty
// updates made with an atomic compare-and-exchange on guest memory, as a CPU does.
//
// Bounded: `levels` reads per walk, at most `maximumRestarts` walks when the guest keeps
// rewriting an entry under us, at most `maximumCASRetries` exchanges per entry.

struct FirstLevelMapping: Equatable {
    var outputPage: UInt64
    var pageShift: UInt8
    /// What the translation allows for this request's privilege. Write is left out while the
    /// leaf is not dirty, so that the first write walks again and sets D.
    var permissions: Permissions
}

struct FirstLevelWalk {
    let root: UInt64
    let levels: Int
    /// WPE: supervisor writes need R/W.
    let writeProtect: Bool
    /// NXE: XD forbids execute.
    let noExecute: Bool
    /// SMEP: supervisor execute of user pages forbidden.
    let supervisorExecuteProtect: Bool
    /// EAFE: set EA (bit 10) with A.
    let extendedAccessed: Bool
    /// Nested: tables and output are guest-physical, translated by the second level.
    let nested: NestedStage?

    static let maximumRestarts = 4
    static let maximumCASRetries = 16

    /// Bits 63:(width - 1) must all equal bit (width - 1): 48-bit or 57-bit canonical form.
    func isCanonical(_ address: UInt64) -> Bool {
        let width = UInt64(levels == 5 ? 57 : 48)
        let upper = Int64(bitPattern: address) >> Int64(width - 1)
        return upper == 0 || upper == -1
    }

    func translate(_ address: UInt64, access: Permissions, privileged: Bool, platform: any Platform,
                   reserved: FirstLevelEntry.ReservedBits) throws(FaultReason) -> FirstLevelMapping {
        guard levels == 4 || levels == 5 else { throw .pasidEntryInvalid }
        guard isCanonical(address) else { throw .flNonCanonical }
        for _ in 0..<Self.maximumRestarts {
            if let mapping = try walkOnce(address, access: access, privileged: privileged,
                                          platform: platform, reserved: reserved) {
                return mapping
            }
        }
        // The guest rewrote an entry between our read and our update, every time.
        throw .flAccessedDirtyUpdateFailed
    }

    /// One walk; nil when an entry changed under the accessed/dirty update and the walk must restart.
    private func walkOnce(_ address: UInt64, access: Permissions, privileged: Bool, platform: any Platform,
                          reserved: FirstLevelEntry.ReservedBits) throws(FaultReason) -> FirstLevelMapping? {
        var path = WalkPath()
        var tableGPA = root
        var writable = true, user = true, executeDisabled = false
        // The bits every entry read has: a walk over entries already accessed (and a dirty
        // leaf, for a write) has no update to make and skips the compare-and-exchange pass.
        var common = ~UInt64(0)
        var level = levels
        var leaf = FirstLevelEntry(0)
        while true {
            let (tableHost, tableWritable) = try tablePage(tableGPA, isRoot: level == levels, platform: platform)
            let shift = UInt64(12 + 9 * (level - 1))
            let entryAddress = tableHost + ((address >> shift) & 0x1FF) * 8
            guard let raw = platform.readGuest64(entryAddress) else {
                throw level == levels ? .flRootAccessError : .flEntryAccessError
            }
            let entry = FirstLevelEntry(raw)
            guard entry.isPresent else { throw .flEntryNotPresent }
            if entry.hasReservedBits(atLevel: level, reserved) { throw .flEntryReserved }
            path.append(entryAddress, raw, tableWritable: tableWritable)
            common &= raw
            writable = writable && entry.isWritable
            user = user && entry.isUser
            executeDisabled = executeDisabled || entry.isExecuteDisabled
            if entry.isLeaf(atLevel: level) { leaf = entry; break }
            tableGPA = entry.address
            level -= 1
        }

        // Access rights (VT-d 3.6.2): user requests need U/S everywhere; writes need R/W
        // everywhere, for supervisor requests only with WPE; execute needs XD clear (NXE)
        // and, for supervisor requests with SMEP, a supervisor page.
        if !privileged && !user { throw .flUserSupervisor }
        let mayWrite = writable || (privileged && !writeProtect)
        if access.contains(.write) && !mayWrite { throw .smWriteDenied }
        let mayExecute = !(noExecute && executeDisabled) && !(privileged && supervisorExecuteProtect && user)
        if access.contains(.execute) && !mayExecute { throw .executeDenied }

        let write = access.contains(.write)
        var accessed = FirstLevelEntry.accessedBit
        if extendedAccessed { accessed |= FirstLevelEntry.extendedAccessedBit }
        if common & accessed != accessed || (write && leaf.raw & FirstLevelEntry.dirtyBit == 0) {
            switch try updateAccessedDirty(&path, write: write, platform: platform) {
            case .restart: return nil
            case .done: break
            }
        }

        let shift = UInt64(12 + 9 * (level - 1))
        let pageMask: UInt64 = (1 << shift) - 1
        // Not an array literal: across the module boundary `[.read]` builds an array per walk.
        var permissions = Permissions.read
        if mayWrite && (write || leaf.isDirty) { permissions.insert(.write) }
        if mayExecute { permissions.insert(.execute) }
        let guestPage = leaf.address & ~pageMask

        guard let nested else {
            return FirstLevelMapping(outputPage: guestPage, pageShift: UInt8(shift), permissions: permissions)
        }
        let gpa = guestPage | (address & pageMask)
        let second = try nested.output(gpa, access: access, platform: platform)
        // The translation is as large as the smaller of the two pages.
        let outShift = min(UInt64(second.pageShift), shift)
        let outMask: UInt64 = (1 << outShift) - 1
        let hostAddress = second.outputPage | (gpa & ((1 << UInt64(second.pageShift)) - 1))
        return FirstLevelMapping(outputPage: hostAddress & ~outMask, pageShift: UInt8(outShift),
                                 permissions: permissions.intersection(second.permissions))
    }

    private func tablePage(_ gpa: UInt64, isRoot: Bool, platform: any Platform) throws(FaultReason)
        -> (UInt64, Bool) {
        guard let nested else { return (gpa, true) }
        let page = try nested.tablePage(gpa, isRoot: isRoot, platform: platform)
        return (page.hostAddress, page.writable)
    }

    private enum UpdateOutcome { case done, restart }

    /// Sets A (and EA) at every level and D at the leaf of a write, top-down, each with a
    /// compare-and-exchange: a concurrent A/D change is merged and retried; any other change
    /// restarts the walk, as the entry we translated through is gone.
    private func updateAccessedDirty(_ path: inout WalkPath, write: Bool, platform: any Platform)
        throws(FaultReason) -> UpdateOutcome {
        var accessed = FirstLevelEntry.accessedBit
        if extendedAccessed { accessed |= FirstLevelEntry.extendedAccessedBit }
        for i in 0..<path.count {
            let (entryAddress, seen, tableWritable) = path[i]
            var expected = seen
            let isLeaf = i == path.count - 1
            let bits = accessed | (isLeaf && write ? FirstLevelEntry.dirtyBit : 0)
            if expected & bits == bits { continue }
            if !tableWritable { throw .nestedFLEntryWriteDenied }
            var retries = 0
            while true {
                guard let found = platform.compareExchangeGuest64(entryAddress, expected: expected,
                                                                  desired: expected | bits) else {
                    throw .flAccessedDirtyUpdateFailed
                }
                if found == expected { break }
                let stable = ~FirstLevelEntry.hardwareUpdatedBits
                if found & stable != seen & stable { return .restart }
                if found & bits == bits { break }
                retries += 1
                if retries >= Self.maximumCASRetries { throw .flAccessedDirtyUpdateFailed }
                expected = found
            }
        }
        return .done
    }
}

/// The entries one walk read, top-down: at most five, kept inline (no allocation on the miss path).
struct WalkPath {
    private var addresses: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    private var values: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    private var writableMask: UInt8 = 0
    private(set) var count = 0

    mutating func append(_ address: UInt64, _ value: UInt64, tableWritable: Bool) {
        precondition(count < 5)
        withUnsafeMutableBytes(of: &addresses) { $0.storeBytes(of: address, toByteOffset: count * 8, as: UInt64.self) }
        withUnsafeMutableBytes(of: &values) { $0.storeBytes(of: value, toByteOffset: count * 8, as: UInt64.self) }
        if tableWritable { writableMask |= 1 << UInt8(count) }
        count += 1
    }

    subscript(i: Int) -> (address: UInt64, value: UInt64, tableWritable: Bool) {
        let a = withUnsafeBytes(of: addresses) { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
        let v = withUnsafeBytes(of: values) { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
        return (a, v, writableMask & (1 << UInt8(i)) != 0)
    }
}
