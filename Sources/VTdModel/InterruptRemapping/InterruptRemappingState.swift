// Interrupt remapping as a part of the unit's state (VT-d spec 5.1, 11.4.8): it owns IRTA
// (undefined, reading 0, without intremap), the table GCMD.SIRTP latched from it, and the
// interrupt entry cache of that table. GSTS.IRES/CFIS stay with the global status the
// command register owns.

struct InterruptRemappingState: Sendable {
    /// The part of the register window interrupt remapping owns.
    static let offsets = Reg.interruptRemappingTableAddress..<Reg.pageRequestQueueHead

    private(set) var registers: RegisterFile
    /// The table GCMD.SIRTP latched (all zero until the guest sets one); remapping reads it.
    private(set) var latchedTable = InterruptRemappingTableAddress(rawValue: 0)
    /// Validated IRTEs of the latched table.
    var entryCache = InterruptEntryCache()
    /// The latched table lies within the host address width.
    private let hostAddressMask: UInt64

    init(configuration c: VTdConfiguration, hostAddressMask: UInt64) {
        self.hostAddressMask = hostAddressMask
        registers = RegisterFile(base: Self.offsets.lowerBound, size: Self.offsets.count)
        if c.interruptRemapping {
            registers.define(Reg.interruptRemappingTableAddress, width: 8,
                             writable: InterruptRemappingTableAddress.writable(
                                extendedInterruptMode: c.extendedInterruptMode))
        }
    }

    mutating func reset() {
        registers.reset()
        latchedTable = InterruptRemappingTableAddress(rawValue: 0)
        entryCache.invalidateAll()
    }

    /// A guest write through IRTA's masks (no side effect: SIRTP latches it).
    mutating func guestWrite(_ offset: Int, _ value: UInt64, width: Int) {
        registers.write(offset, value, width: width)
    }

    /// GCMD.SIRTP: IRTA becomes the table remapping reads, its address limited to aw-bits.
    mutating func latchTable() {
        latchedTable = InterruptRemappingTableAddress(rawValue: registers.get64(Reg.interruptRemappingTableAddress)
                                                      & (hostAddressMask | UInt64.mask(11, 0)))
    }

    /// Puts back this part of a migrated state (the latched table checked against aw-bits).
    mutating func restore(window words: [UInt32], latchedTable: InterruptRemappingTableAddress) {
        registers.restore(rawWords: words[registers.wordRange])
        self.latchedTable = latchedTable
    }
}
