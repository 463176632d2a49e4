// Register-based invalidation (VT-d spec 6.5.1, 11.4.4.x): the context command register
// (CCMD) and the IOTLB invalidate registers (IVA, IOTLB). Invalidation completes within the
// write: the request bit (ICC, IVT) reads back clear at once with the granularity actually
// performed (CAIG, IAIG). While queued invalidation is enabled the spec forbids these
// registers; a request is then not performed and reports granularity 0 instead of leaving
// the guest polling a bit that never clears. What an invalidation does to the caches and
// which events it sends is CacheInvalidation.swift's, shared with the queue.

/// Request and actual granularities of CCMD (CIRG/CAIG) and IOTLB (IIRG/IAIG).
/// Actual granularity 0 means "not performed".
public enum InvalidationGranularity: UInt64, Sendable {
    case none = 0
    case global = 1
    case domain = 2
    /// Device-selective (CCMD) or page-selective (IOTLB).
    case selective = 3
}

/// CCMD (offset 0x28).
public struct ContextCommand: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// ICC, 63: invalidate the context cache (clears when done).
    public var invalidate: Bool { get { rawValue.bit(63) } set { rawValue.setBit(63, newValue) } }
    /// CIRG, 62:61.
    public var requestedGranularity: InvalidationGranularity {
        InvalidationGranularity(rawValue: rawValue.bits(62, 61))!
    }
    /// CAIG, 60:59 (read-only for software).
    public var actualGranularity: InvalidationGranularity {
        get { InvalidationGranularity(rawValue: rawValue.bits(60, 59))! }
        set { rawValue.setBits(60, 59, to: newValue.rawValue) }
    }
    /// FM, 33:32: function-number bits to ignore in device-selective invalidation.
    public var functionMask: UInt8 { UInt8(rawValue.bits(33, 32)) }
    /// SID, 31:16.
    public var sourceID: RequesterID { RequesterID(rawValue: UInt16(rawValue.bits(31, 16))) }
    /// DID, 15:0.
    public var domainID: DomainID { DomainID(rawValue: UInt16(rawValue.bits(15, 0))) }

    static let writable: UInt64 = 1 << 63 | UInt64.mask(62, 61) | UInt64.mask(33, 0)
}

/// IOTLB invalidate register (IOTLB_REG, at ECAP.IRO x 16 + 8).
public struct IOTLBInvalidate: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// IVT, 63: invalidate the IOTLB (clears when done).
    public var invalidate: Bool { get { rawValue.bit(63) } set { rawValue.setBit(63, newValue) } }
    /// IIRG, 61:60.
    public var requestedGranularity: InvalidationGranularity {
        InvalidationGranularity(rawValue: rawValue.bits(61, 60))!
    }
    /// IAIG, 58:57 (read-only for software).
    public var actualGranularity: InvalidationGranularity {
        get { InvalidationGranularity(rawValue: rawValue.bits(58, 57))! }
        set { rawValue.setBits(58, 57, to: newValue.rawValue) }
    }
    /// DR, 49 and DW, 48: drain reads / writes first (requests complete synchronously here).
    public var drainReads: Bool { rawValue.bit(49) }
    public var drainWrites: Bool { rawValue.bit(48) }
    /// DID, 47:32.
    public var domainID: DomainID { DomainID(rawValue: UInt16(rawValue.bits(47, 32))) }

    static let writable: UInt64 = 1 << 63 | UInt64.mask(61, 60) | UInt64.mask(49, 32)
}

/// IVA (offset ECAP.IRO x 16): the address of a page-selective IOTLB invalidation. Write-only.
public struct InvalidateAddress: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// ADDR, 63:12.
    public var address: UInt64 { rawValue & UInt64.mask(63, 12) }
    /// IH, 6: only leaf entries changed; cached non-leaf entries may stay.
    public var invalidationHint: Bool { rawValue.bit(6) }
    /// AM, 5:0: invalidate 2^AM pages.
    public var addressMask: UInt8 { UInt8(rawValue.bits(5, 0)) }

    static let writable: UInt64 = UInt64.mask(63, 12) | UInt64.mask(6, 0)
}

/// CCMD and the IOTLB register work alike: software sets the request bit with a requested
/// granularity; the unit performs it within the write, clears the bit and reports what it did.
protocol InvalidationCommandRegister: RawRepresentable where RawValue == UInt64 {
    var invalidate: Bool { get set }
    var requestedGranularity: InvalidationGranularity { get }
    var actualGranularity: InvalidationGranularity { get set }
    /// The register's name in guest-error lines.
    static var name: String { get }
}

extension ContextCommand: InvalidationCommandRegister { static let name = "CCMD" }
extension IOTLBInvalidate: InvalidationCommandRegister { static let name = "IOTLB" }

extension UnitState {
    /// After software wrote the high half of CCMD (where ICC is).
    mutating func contextCommandWritten(effects: inout Effects) {
        runInvalidationCommand(ContextCommand.self, at: Reg.contextCommand, effects: &effects) { s, command, effects in
            switch command.requestedGranularity {
            case .none: return false
            case .global: s.invalidateContextCache(.global, effects: &effects)
            case .domain: s.invalidateContextCache(.domain(command.domainID), effects: &effects)
            case .selective:
                s.invalidateContextCache(.device(sourceID: command.sourceID, functionMask: command.functionMask,
                                                 domain: command.domainID), effects: &effects)
            }
            return true
        }
    }

    /// After software wrote the high half of the IOTLB register (where IVT is).
    mutating func iotlbInvalidateWritten(effects: inout Effects) {
        runInvalidationCommand(IOTLBInvalidate.self, at: Reg.iotlbInvalidate, effects: &effects) { s, command, effects in
            let scope: IOTLBInvalidationScope
            switch command.requestedGranularity {
            case .none: return false
            case .global: scope = .global
            case .domain: scope = .domain(command.domainID)
            case .selective:
                let iva = InvalidateAddress(rawValue: s.registers.get64(Reg.invalidateAddress))
                guard UInt64(iva.addressMask) <= s.capability.maximumAddressMaskValue else {
                    effects.log(.guestError, "IOTLB page invalidation with address mask \(iva.addressMask) above MAMV ignored")
                    return false
                }
                scope = .pages(domain: command.domainID, address: iva.address, addressMask: iva.addressMask,
                               leafOnly: iva.invalidationHint)
            }
            // The queue's path: UNMAP events and the shadow re-sync happen for registers too.
            s.invalidateIOTLB(scope, effects: &effects)
            return true
        }
    }

    /// Performs the invalidation software requested in the command register at `offset` (if
    /// its request bit is set): `perform` returns whether it was done. Refused while queued
    /// invalidation is enabled, and for the reserved granularity 0.
    private mutating func runInvalidationCommand<Command: InvalidationCommandRegister>(
        _: Command.Type, at offset: Int, effects: inout Effects,
        perform: (inout UnitState, Command, inout Effects) -> Bool
    ) {
        guard var command = Command(rawValue: registers.get64(offset)), command.invalidate else { return }
        command.invalidate = false
        if queuedInvalidationEnabled {
            effects.log(.guestError, "\(Command.name) invalidation ignored: queued invalidation is enabled")
            command.actualGranularity = .none
        } else if command.requestedGranularity == .none {
            effects.log(.guestError, "\(Command.name) invalidation with reserved granularity 0 ignored")
            command.actualGranularity = .none
        } else {
            command.actualGranularity = perform(&self, command, &effects) ? command.requestedGranularity : .none
        }
        registers.set64(offset, command.rawValue)
    }
}
