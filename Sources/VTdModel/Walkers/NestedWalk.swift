// Nested translation (VT-d 3.8, PGTT 011): the first level yields guest-physical addresses,
// those of its own tables and of the final page, and each goes through the second level
// before memory is touched. Faults carry the nested codes 0x74-0x7B.

struct NestedStage {
    let secondLevel: SecondLevelWalk
    let maximumGuestAddressWidth: Int
    let reserved: SecondLevelEntry.ReservedBits

    /// Guest-physical addresses the second level can translate.
    private func isInRange(_ gpa: UInt64) -> Bool {
        let width = min(secondLevel.inputWidth, maximumGuestAddressWidth)
        return gpa >> UInt64(width) == 0
    }

    /// Where a first-level table lives in host memory. Reading it needs second-level read
    /// permission; `writable` tells whether accessed/dirty updates may write it.
    func tablePage(_ gpa: UInt64, isRoot: Bool, platform: any Platform) throws(FaultReason)
        -> (hostAddress: UInt64, writable: Bool) {
        guard isInRange(gpa) else { throw .nestedFLAddressBeyondMGAW }
        do throws(SecondLevelFault) {
            let m = try secondLevel.translate(gpa, access: .read, platform: platform, reserved: reserved)
            let offset = gpa & ((1 << UInt64(m.pageShift)) - 1)
            return (m.outputPage | offset, m.permissions.contains(.write))
        } catch {
            switch error {
            case .beyondAddressWidth: throw .nestedFLAddressBeyondMGAW
            case .rootAccessError, .accessError: throw .slEntryAccessError
            case .reserved: throw .slEntryReserved
            case .notPresent, .readDenied, .writeDenied, .executeDenied:
                throw isRoot ? .nestedFLRootReadDenied : .nestedFLEntryReadDenied
            }
        }
    }

    /// The final page: the request's own access is checked at the second level.
    func output(_ gpa: UInt64, access: Permissions, platform: any Platform) throws(FaultReason) -> SecondLevelMapping {
        guard isInRange(gpa) else { throw .nestedFLAddressBeyondMGAW }
        do throws(SecondLevelFault) {
            return try secondLevel.translate(gpa, access: access, platform: platform, reserved: reserved)
        } catch {
            switch error {
            case .beyondAddressWidth: throw .nestedFLAddressBeyondMGAW
            case .rootAccessError, .accessError: throw .slEntryAccessError
            case .reserved: throw .slEntryReserved
            case .notPresent: throw .slEntryPermissionDenied
            case .readDenied: throw .smReadDenied
            case .writeDenied: throw .smWriteDenied
            case .executeDenied: throw .executeDenied
            }
        }
    }
}
