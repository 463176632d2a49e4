// Interrupt remapping scenarios: a unit with remapping enabled over a table in FakeGuest RAM.

@testable import VTdModel

struct InterruptRemappingScenario {
    let guest = FakeGuest()
    let unit: VTdUnit
    let table: InterruptRemappingTableAddress

    /// A 256-entry table at 0x10000 unless told otherwise.
    init(x2APIC: Bool = false, compatibilityFormat: Bool = false,
         table: InterruptRemappingTableAddress? = nil) {
        var configuration = VTdConfiguration()
        configuration.extendedInterruptMode = x2APIC
        unit = try! VTdUnit(configuration: configuration, platform: guest)
        self.table = table ?? InterruptRemappingTableAddress(base: 0x10000, sizeField: 7, extendedInterruptMode: x2APIC)
        unit.enableInterruptRemapping(table: self.table, compatibilityFormat: compatibilityFormat)
    }

    func install(_ entry: IRTE, at index: UInt32) {
        guest.write64(table.entryAddress(index), entry.low)
        guest.write64(table.entryAddress(index) + 8, entry.high)
    }

    /// A remappable-format MSI for `handle` (plus `subhandle` with SHV) from `sid`.
    func remap(sid: RequesterID = 0x0010, handle: UInt16, subhandle: UInt16? = nil, data: UInt32? = nil,
               recordsFaults: Bool = true) -> InterruptRemapOutcome {
        let address = InterruptRequestAddress.remappable(handle: handle, subhandleValid: subhandle != nil)
        return unit.remapInterrupt(sourceID: sid, address: address.rawValue, data: data ?? UInt32(subhandle ?? 0),
                                   recordsFaults: recordsFaults)
    }

    /// A compatibility-format MSI to APIC 1, vector 0x40.
    func remapCompatibilityFormat(sid: RequesterID = 0x0010) -> InterruptRemapOutcome {
        unit.remapInterrupt(sourceID: sid, address: 0xFEE0_1000, data: 0x40)
    }

    /// The first fault recording register.
    var firstFaultRecord: FaultRecordingRegister { unit.state.withLock { $0.faults.record(0) } }

    var recordedFaultLogs: [String] { guest.logs(.guestError).filter { $0.hasPrefix("interrupt remapping fault") } }
}

extension VTdUnit {
    /// Remapping on with `table` latched, the way a driver does it: IRTA, GCMD.SIRTP, then
    /// GCMD.IRE (with CFI when asked).
    func enableInterruptRemapping(table: InterruptRemappingTableAddress, compatibilityFormat: Bool = false) {
        // GCMD takes the whole desired state: keep what is on (QIE, TE), as Linux does.
        let status = GlobalCommand(rawValue: UInt32(truncatingIfNeeded: mmioRead(offset: Reg.globalStatus, width: 4)))
        let persistent = status.subtracting([.setRootTablePointer, .setInterruptRemappingTablePointer])
        mmioWrite(offset: Reg.interruptRemappingTableAddress, value: table.rawValue, width: 8)
        mmioWrite(offset: Reg.globalCommand,
                  value: UInt64(persistent.union(.setInterruptRemappingTablePointer).rawValue), width: 4)
        var command = persistent.union(.interruptRemappingEnable)
        if compatibilityFormat { command.insert(.compatibilityFormatInterrupts) }
        mmioWrite(offset: Reg.globalCommand, value: UInt64(command.rawValue), width: 4)
    }

    func disableInterruptRemapping() {
        let status = GlobalCommand(rawValue: UInt32(truncatingIfNeeded: mmioRead(offset: Reg.globalStatus, width: 4)))
        let command = status.subtracting([.setRootTablePointer, .setInterruptRemappingTablePointer,
                                          .interruptRemappingEnable])
        mmioWrite(offset: Reg.globalCommand, value: UInt64(command.rawValue), width: 4)
    }
}

extension IRTE {
    /// A present, fixed, edge, physical entry for `vector` to xAPIC id `apic` (DST bits 15:8).
    static func xAPIC(vector: UInt8, apic: UInt8) -> IRTE {
        IRTE(vector: vector, destinationField: UInt32(apic) << 8)
    }
}
