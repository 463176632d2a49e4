// Global command and status (VT-d spec 11.4.4, 11.4.5), and the table pointers the commands
// latch: the root table (RTADDR, 11.4.6) and the interrupt remapping table (IRTA, 11.4.8.x; its type lives with interrupt remapping).
//
// Software writes GCMD with the whole desired state plus at most one one-shot command (SRTP,
// SIRTP). A command bit that differs from its status bit toggles that feature; SRTP and
// SIRTP act whenever set. GCMD reads as 0. Changing translation state invalidates no cache
// (the spec leaves that to software) but bumps the caches' generation, so a walk that began
// before the change cannot cache its result, and asks the host to re-query every device.

/// GCMD and GSTS: each command bit and its status bit share a position.
public struct GlobalCommand: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// TE / TES, 31: DMA remapping.
    public static let translationEnable = GlobalCommand(rawValue: 1 << 31)
    /// SRTP / RTPS, 30: latch RTADDR.
    public static let setRootTablePointer = GlobalCommand(rawValue: 1 << 30)
    /// SFL / FLS, 29 and EAFL / AFLS, 28: advanced fault logging (not supported: CAP.AFL = 0).
    public static let setFaultLog = GlobalCommand(rawValue: 1 << 29)
    public static let enableAdvancedFaultLogging = GlobalCommand(rawValue: 1 << 28)
    /// WBF / WBFS, 27: write-buffer flush (CAP.RWBF = 0: nothing to flush).
    public static let writeBufferFlush = GlobalCommand(rawValue: 1 << 27)
    /// QIE / QIES, 26: queued invalidation.
    public static let queuedInvalidationEnable = GlobalCommand(rawValue: 1 << 26)
    /// IRE / IRES, 25: interrupt remapping.
    public static let interruptRemappingEnable = GlobalCommand(rawValue: 1 << 25)
    /// SIRTP / IRTPS, 24: latch IRTA.
    public static let setInterruptRemappingTablePointer = GlobalCommand(rawValue: 1 << 24)
    /// CFI / CFIS, 23: compatibility-format interrupts pass through (xAPIC mode only).
    public static let compatibilityFormatInterrupts = GlobalCommand(rawValue: 1 << 23)

    /// Every command bit is written; all of GCMD reads as 0.
    static let writable: UInt32 = 0xFF80_0000

    /// Sets `bit` of this status as it is in `command`.
    mutating func follow(_ command: GlobalCommand, _ bit: GlobalCommand) {
        if command.contains(bit) { insert(bit) } else { remove(bit) }
    }
}

/// RTADDR.TTM, 11:10.
public enum TranslationTableMode: UInt8, Sendable {
    case legacy = 0
    case scalable = 1
    /// Reserved encoding: no table format, so every DMA request is blocked.
    case reserved = 2
    /// Abort-DMA mode: every DMA request is blocked (spec 3.x; also how a unit without
    /// ADMS treats this otherwise reserved value — blocking is the safe reading of both).
    case abortDMA = 3
}

/// RTADDR (offset 0x20).
public struct RootTableAddress: RawRepresentable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// RTA, 63:12.
    public var address: UInt64 { rawValue & UInt64.mask(63, 12) }
    public var translationTableMode: TranslationTableMode {
        TranslationTableMode(rawValue: UInt8(rawValue.bits(11, 10)))!
    }

    /// TTM exists only with scalable mode; without it RTADDR holds just the address.
    static func writable(scalableMode: Bool) -> UInt64 {
        UInt64.mask(63, 12) | (scalableMode ? UInt64.mask(11, 10) : 0)
    }
}

/// What GCMD.SRTP latched: the root table the translation path walks.
public struct RootTablePointer: Equatable, Sendable {
    /// Guest-physical address of the 4 KiB root table, limited to the host address width.
    public var address: UInt64
    public var mode: TranslationTableMode
    public var isScalable: Bool { mode == .scalable }
    /// TTM 10 and 11: no table is walked, every DMA request is blocked.
    public var blocksAllDMA: Bool { mode == .reserved || mode == .abortDMA }

    public init(address: UInt64, mode: TranslationTableMode) {
        self.address = address
        self.mode = mode
    }
}

extension InterruptRemappingTableAddress {
    /// IRTA, S and, with ECAP.EIM, EIME (reserved-zero otherwise).
    static func writable(extendedInterruptMode: Bool) -> UInt64 {
        UInt64.mask(63, 12) | (extendedInterruptMode ? 1 << 11 : 0) | UInt64.mask(3, 0)
    }
}

extension UnitState {
    var globalStatus: GlobalCommand {
        get { GlobalCommand(rawValue: registers.get32(Reg.globalStatus)) }
        set {
            registers.set32(Reg.globalStatus, newValue.rawValue)
            // Lock-free IOTLB hits (Translate.swift) only while translation is on.
            caches.iotlb.allowConcurrentLookups(newValue.contains(.translationEnable))
        }
    }

    /// GSTS.TES: DMA requests are translated (else they pass through untranslated).
    var translationEnabled: Bool { globalStatus.contains(.translationEnable) }
    /// GSTS.QIES.
    var queuedInvalidationEnabled: Bool { globalStatus.contains(.queuedInvalidationEnable) }
    /// GSTS.IRES.
    var interruptRemappingEnabled: Bool { globalStatus.contains(.interruptRemappingEnable) }
    /// GSTS.CFIS: compatibility-format interrupts bypass remapping.
    var compatibilityFormatInterruptsAllowed: Bool { globalStatus.contains(.compatibilityFormatInterrupts) }

    /// Guest-physical addresses are limited to the host address width (aw-bits), as QEMU does.
    var hostAddressMask: UInt64 { UInt64.mask(configuration.addressWidth - 1, 0) }

    /// After software wrote GCMD.
    mutating func globalCommandWritten(effects: inout Effects) {
        let command = GlobalCommand(rawValue: registers.get32(Reg.globalCommand))
        let status = globalStatus
        let changed = command.symmetricDifference(status)
        let c = configuration

        if command.contains(.setRootTablePointer) { setRootTablePointer(effects: &effects) }
        if changed.contains(.translationEnable) {
            if c.dmaTranslation {
                setTranslation(enabled: command.contains(.translationEnable), effects: &effects)
            } else {
                effects.log(.guestError, "GCMD.TE ignored: dma-translation is off")
            }
        }
        if changed.contains(.queuedInvalidationEnable) {
            setQueuedInvalidation(enabled: command.contains(.queuedInvalidationEnable), effects: &effects)
        }
        if c.interruptRemapping {
            if command.contains(.setInterruptRemappingTablePointer) { setInterruptRemappingTablePointer(effects: &effects) }
            if changed.contains(.interruptRemappingEnable) {
                globalStatus.follow(command, .interruptRemappingEnable)
                // Remapped routes the host cached (KVM MSI routes) follow the enable state.
                effects.events.append(.interruptCacheInvalidate(index: 0, count: 0))
            }
            if changed.contains(.compatibilityFormatInterrupts) {
                globalStatus.follow(command, .compatibilityFormatInterrupts)
            }
        }
        // SFL/EAFL (no advanced fault logging) and WBF (no write buffer: WBFS never sets) need
        // no action.
    }

    private mutating func setRootTablePointer(effects: inout Effects) {
        let rtaddr = RootTableAddress(rawValue: registers.get64(Reg.rootTableAddress))
        latchedRootTable = RootTablePointer(address: rtaddr.address & hostAddressMask,
                                            mode: rtaddr.translationTableMode)
        globalStatus.insert(.setRootTablePointer)
        translationSetupChanged(effects: &effects)
    }

    private mutating func setTranslation(enabled: Bool, effects: inout Effects) {
        if enabled && latchedRootTable == nil {
            effects.log(.guestError, "GCMD.TE set before any root table pointer (SRTP)")
        }
        globalStatus.follow(enabled ? .translationEnable : [], .translationEnable)
        translationSetupChanged(effects: &effects)
    }

    private mutating func translationSetupChanged(effects: inout Effects) {
        caches.setupChanged()
        effects.events.append(.contextChanged(sid: nil, pasid: nil))
        requestShadowResync(effects: &effects) { _, _ in true }
    }

    private mutating func setInterruptRemappingTablePointer(effects: inout Effects) {
        interruptRemapping.latchTable()
        globalStatus.insert(.setInterruptRemappingTablePointer)
        effects.events.append(.interruptCacheInvalidate(index: 0, count: 0))
    }
}
