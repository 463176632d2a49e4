// Interrupt remapping (VT-d spec chapter 5): every MSI and IOAPIC message a device sends to
// 0xFEEx_xxxx is either passed through, remapped through its IRTE, or blocked with a fault.
//
// Where QEMU 10.0 differs and this unit follows the spec:
// - compatibility-format requests are blocked (fault 0x25) unless GSTS.CFIS is set, and always
//   in x2APIC mode (IRTA.EIME); QEMU lets them all through;
// - a posted-format IRTE (IM = 1) is refused as reserved (0x24) because posted interrupts are
//   not offered (CAP.PI clear); QEMU ignores IM and delivers the entry as if it were remapped;
// - in xAPIC mode the unused DST bits are reserved, and so are the reserved DLM encodings and
//   SVT = 11b (QEMU reports 0x26 for the latter; the entry, not the requester, is at fault).
//
// Hot path: a request whose IRTE is in the interrupt entry cache takes the lock once, makes no
// callback, allocates nothing and builds no Effects (`cachedRemap`): the cache keeps the message
// each valid entry delivers. Everything else (faults, misses, pass-through) takes the full path.

/// What the unit does with an interrupt request.
public enum InterruptRemapOutcome: Equatable, Sendable {
    /// Deliver this message in place of the request.
    case remapped(MSIMessage)
    /// Deliver the request unchanged: remapping is off, or a compatibility-format request while
    /// GSTS.CFIS lets those through.
    case passThrough
    /// Deliver nothing: the request faulted with this reason (recorded unless the IRTE's FPD is
    /// set or the caller only probed).
    case blocked(FaultReason)
}

/// The first half of a remap, decided under the lock before the IRTE is known.
enum InterruptRemapStep {
    case done(InterruptRemapOutcome)
    /// The IRTE is not cached: read it from guest memory (without the lock), then finish.
    case readEntry(table: InterruptRemappingTableAddress, index: UInt32, cacheGeneration: UInt64)
}

// GSTS.IRES and GSTS.CFIS come from Registers/GlobalCommand.swift; the latched IRTA and the
// entry cache from InterruptRemappingState.

extension UnitState {
    /// Everything about a request that does not need the IRTE, and the IRTE itself when cached.
    mutating func beginInterruptRemap(sourceID: RequesterID, address: UInt64, data: UInt32, recordsFaults: Bool,
                                      effects: inout Effects) -> InterruptRemapStep {
        guard interruptRemappingEnabled else { return .done(.passThrough) }
        let request = InterruptRequestAddress(rawValue: address)
        guard request.isWellFormed else {
            return .done(block(.irRequestReserved, sourceID: sourceID, index: 0, record: recordsFaults,
                               effects: &effects, "interrupt request to 0x\(String(address, radix: 16)) is outside 0xFEEx_xxxx"))
        }
        let table = interruptRemapping.latchedTable
        guard request.isRemappable else {
            // GSTS.CFIS only applies in xAPIC mode: with EIME set compatibility format is blocked.
            if compatibilityFormatInterruptsAllowed && !table.extendedInterruptMode { return .done(.passThrough) }
            return .done(block(.irCompatibilityBlocked, sourceID: sourceID, index: 0, record: recordsFaults,
                               effects: &effects, "compatibility-format interrupt from \(sourceID) blocked"
                                   + (table.extendedInterruptMode ? " (x2APIC mode)" : " (GSTS.CFIS clear)")))
        }
        guard let index = request.entryIndex(data: data) else {
            return .done(block(.irRequestReserved, sourceID: sourceID, index: UInt32(request.handle), record: recordsFaults,
                               effects: &effects, "remappable interrupt with SHV has data bits 31:16 set (0x\(String(data, radix: 16)))"))
        }
        guard index < table.entryCount else {
            return .done(block(.irIndexOverflow, sourceID: sourceID, index: index, record: recordsFaults,
                               effects: &effects, "interrupt index \(index) beyond the \(table.entryCount)-entry table"))
        }
        if let entry = interruptRemapping.entryCache.lookup(table: table, index: index)?.entry {
            return .done(remap(entry, sourceID: sourceID, index: index, table: table, recordsFaults: recordsFaults,
                               effects: &effects))
        }
        return .readEntry(table: table, index: index, cacheGeneration: interruptRemapping.entryCache.generation)
    }

    /// The message for a request the interrupt entry cache answers without a fault; nil sends
    /// the request down the full path (`beginInterruptRemap`), which decides everything else.
    /// Mirrors that path's checks for the case it answers: remappable format, SHV data, index
    /// in range, a cached (hence valid) entry, the requester verified.
    @inline(__always)
    mutating func cachedRemap(sourceID: RequesterID, address: UInt64, data: UInt32) -> MSIMessage? {
        guard interruptRemappingEnabled else { return nil }
        let request = InterruptRequestAddress(rawValue: address)
        guard request.isWellFormed, request.isRemappable, let index = request.entryIndex(data: data) else { return nil }
        let table = interruptRemapping.latchedTable
        guard index < table.entryCount,
              let hit = interruptRemapping.entryCache.lookup(table: table, index: index),
              Self.sourceIDVerified(hit.entry, requester: sourceID)
        else { return nil }
        return hit.message
    }

    /// The second half, once the IRTE was read from guest memory (nil: the read failed).
    mutating func finishInterruptRemap(sourceID: RequesterID, table: InterruptRemappingTableAddress, index: UInt32,
                                       cacheGeneration: UInt64, entry: IRTE?, recordsFaults: Bool,
                                       effects: inout Effects) -> InterruptRemapOutcome {
        guard let entry else {
            return block(.irTableAccessError, sourceID: sourceID, index: index, record: recordsFaults, effects: &effects,
                         "interrupt remapping table entry \(index) at 0x\(String(table.entryAddress(index), radix: 16)) is not readable")
        }
        if Self.entryFault(entry, extendedInterruptMode: table.extendedInterruptMode) == nil {
            interruptRemapping.entryCache.insert(entry, table: table, index: index, readGeneration: cacheGeneration)
        }
        return remap(entry, sourceID: sourceID, index: index, table: table, recordsFaults: recordsFaults,
                     effects: &effects)
    }

    /// What is wrong with the entry itself, whoever asks (VT-d spec 9.10).
    static func entryFault(_ entry: IRTE, extendedInterruptMode: Bool) -> FaultReason? {
        if !entry.present { return .irEntryNotPresent }
        if entry.postedFormat || entry.hasReservedBitsSet(extended: extendedInterruptMode)
            || entry.deliveryMode.isReserved || entry.sourceValidation == .reserved {
            return .irEntryReserved
        }
        return nil
    }

    /// Whether the requester may use the entry (IRTE.SVT/SQ/SID).
    static func sourceIDVerified(_ entry: IRTE, requester: RequesterID) -> Bool {
        switch entry.sourceValidation {
        case .none:
            return true
        case .requesterID:
            // SQ names how many low function-number bits are not compared: none, bit 2, bits 2:1, bits 2:0.
            let ignored: UInt8 = (0b111 << (3 - entry.sourceQualifier)) & 0b111
            return requester.ignoringFunctionBits(ignored) == entry.sourceID.ignoringFunctionBits(ignored)
        case .busRange:
            // SID holds the start bus in 15:8 and the end bus in 7:0.
            let bus = requester.bus, range = entry.sourceID
            return bus >= range.bus && bus <= range.devfn
        case .reserved:
            return false
        }
    }

    private mutating func remap(_ entry: IRTE, sourceID: RequesterID, index: UInt32, table: InterruptRemappingTableAddress,
                                recordsFaults: Bool, effects: inout Effects) -> InterruptRemapOutcome {
        // Every fault found in the entry is a qualified one: FPD silences it, even "not present".
        let record = recordsFaults && !entry.faultProcessingDisabled
        if let reason = Self.entryFault(entry, extendedInterruptMode: table.extendedInterruptMode) {
            return block(reason, sourceID: sourceID, index: index, record: record, effects: &effects,
                         Self.describe(reason, entry: entry, index: index))
        }
        guard Self.sourceIDVerified(entry, requester: sourceID) else {
            return block(.irSourceIDMismatch, sourceID: sourceID, index: index, record: record, effects: &effects,
                         "\(sourceID) may not use interrupt entry \(index) (SVT \(entry.sourceValidation.rawValue),"
                             + " SQ \(entry.sourceQualifier), SID 0x\(String(entry.sourceID.rawValue, radix: 16)))")
        }
        let message = CompatibilityMSI(entry, extendedInterruptMode: table.extendedInterruptMode).message
        return .remapped(message)
    }

    private static func describe(_ reason: FaultReason, entry: IRTE, index: UInt32) -> String {
        if reason == .irEntryNotPresent { return "interrupt entry \(index) is not present" }
        if entry.postedFormat {
            return "interrupt entry \(index) is in posted format, but posted interrupts are not offered (CAP.PI clear)"
        }
        return "interrupt entry \(index) has reserved bits or encodings set (0x\(String(entry.rawValue, radix: 16)))"
    }

    private mutating func block(_ reason: FaultReason, sourceID: RequesterID, index: UInt32, record: Bool,
                                effects: inout Effects, _ why: @autoclosure () -> String) -> InterruptRemapOutcome {
        if record {
            effects.log(.guestError, "interrupt remapping fault 0x\(String(reason.rawValue, radix: 16)): \(why())")
            recordFault(FaultRecord(sourceID: sourceID, address: UInt64(index), reason: reason, isRead: false,
                                    isInterruptFault: true), effects: &effects)
        } else {
            effects.log(.trace, "interrupt blocked, fault 0x\(String(reason.rawValue, radix: 16)) not recorded: \(why())")
        }
        return .blocked(reason)
    }
}

extension VTdUnit {
    /// Remaps one interrupt request from `sourceID` (an IOAPIC passes its own source-id).
    /// `recordsFaults: false` only probes (interrupt route pre-computation): nothing is recorded.
    public func remapInterrupt(sourceID: RequesterID, address: UInt64, data: UInt32,
                               recordsFaults: Bool = true) -> InterruptRemapOutcome {
        if let message = state.withLock({ $0.cachedRemap(sourceID: sourceID, address: address, data: data) }) {
            return .remapped(message)
        }
        return remapInterruptFully(sourceID: sourceID, address: address, data: data, recordsFaults: recordsFaults)
    }

    /// Everything but a cached hit. Out of line: the hit does not pay for its Effects.
    @inline(never)
    private func remapInterruptFully(sourceID: RequesterID, address: UInt64, data: UInt32,
                                     recordsFaults: Bool) -> InterruptRemapOutcome {
        var effects = Effects()
        let step = state.withLock {
            $0.beginInterruptRemap(sourceID: sourceID, address: address, data: data, recordsFaults: recordsFaults,
                                   effects: &effects)
        }
        let outcome: InterruptRemapOutcome
        switch step {
        case .done(let decided):
            outcome = decided
        case let .readEntry(table, index, generation):
            let entry = readIRTE(at: table.entryAddress(index))
            outcome = state.withLock {
                $0.finishInterruptRemap(sourceID: sourceID, table: table, index: index, cacheGeneration: generation,
                                        entry: entry, recordsFaults: recordsFaults, effects: &effects)
            }
        }
        if !effects.isEmpty { perform(&effects) }
        return outcome
    }

    private func readIRTE(at address: UInt64) -> IRTE? {
        var words: (UInt64, UInt64) = (0, 0)
        let ok = withUnsafeMutableBytes(of: &words) { platform.readGuest(address, into: $0) }
        return ok ? IRTE(low: UInt64(littleEndian: words.0), high: UInt64(littleEndian: words.1)) : nil
    }
}
