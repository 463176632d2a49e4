import Testing
@testable import VTdModel

/// One row of VTD-FACTS Part B 1.3: QEMU 10.0.13's CAP/ECAP for the same properties.
struct QEMUCapabilities: CustomTestStringConvertible, Sendable {
    let properties: String
    let configure: @Sendable (inout VTdConfiguration) -> Void
    let cap: UInt64
    let ecap: UInt64
    var testDescription: String { properties }
}

let qemuConfigurations: [QEMUCapabilities] = [
    .init(properties: "default", configure: { _ in },
          cap: 0x00d2_008c_222f_0606, ecap: 0x0000_0000_00f0_0f4a),
    .init(properties: "intremap=off", configure: { $0.interruptRemapping = false },
          cap: 0x00d2_008c_222f_0606, ecap: 0x0000_0000_0000_0f42),
    .init(properties: "caching-mode=on,device-iotlb=on", configure: { $0.cachingMode = true; $0.deviceIOTLB = true },
          cap: 0x00d2_008c_222f_0686, ecap: 0x0000_0000_00f0_0f4e),
    .init(properties: "x-scalable-mode=on", configure: { $0.scalableMode = true },
          cap: 0x00d2_008c_222f_0606, ecap: 0x0000_4800_80f0_0f4a),
    .init(properties: "x-scalable-mode=on,x-flts=on", configure: { $0.scalableMode = true; $0.firstLevel = true },
          cap: 0x01d2_008c_222f_0606, ecap: 0x0000_8800_00f0_0f4a),
    .init(properties: "x-scalable-mode=on,x-pasid-mode=on,snoop-control=on",
          configure: { $0.scalableMode = true; $0.pasid = true; $0.snoopControl = true },
          cap: 0x00d2_008c_222f_0606, ecap: 0x0000_4900_80f0_0fca),
    .init(properties: "aw-bits=39,dma-drain=off", configure: { $0.addressWidth = 39; $0.dmaDrain = false },
          cap: 0x0012_008c_2226_0206, ecap: 0x0000_0000_00f0_0f4a),
    .init(properties: "eim=on,x-buggy-eim=on", configure: { $0.extendedInterruptMode = true },
          cap: 0x00d2_008c_222f_0606, ecap: 0x0000_0000_00f0_0f5a),
    .init(properties: "dma-translation=off", configure: { $0.dmaTranslation = false },
          cap: 0x00d2_008c_222f_0006, ecap: 0x0000_0000_00f0_0f4a),
    .init(properties: "pt=off", configure: { $0.passThrough = false },
          cap: 0x00d2_008c_222f_0606, ecap: 0x0000_0000_00f0_0f0a),
]

@Suite("CAP and ECAP")
struct CapabilityTests {
    @Test("CAP and ECAP match QEMU 10.0 bit for bit, spec 11.4.2-11.4.3", arguments: qemuConfigurations)
    func matchesQEMU(_ row: QEMUCapabilities) {
        let rig = Rig(row.configure)
        #expect(rig.read64(Reg.capability) == row.cap)
        #expect(rig.read64(Reg.extendedCapability) == row.ecap)
        // And as two 32-bit halves, the way a 32-bit guest reads them.
        #expect(UInt64(rig.read32(Reg.capability + 4)) << 32 | UInt64(rig.read32(Reg.capability)) == row.cap)
    }

    @Test("CAP and ECAP are read-only, spec 11.4.2")
    func readOnly() {
        let rig = Rig()
        rig.write64(Reg.capability, 0)
        rig.write64(Reg.extendedCapability, ~0)
        #expect(rig.read64(Reg.capability) == 0x00d2_008c_222f_0606)
        #expect(rig.read64(Reg.extendedCapability) == 0x0000_0000_00f0_0f4a)
    }

    @Test("the decoded fields say where FRCDs and IVA live, spec 11.4.2 FRO / 11.4.3 IRO")
    func decodedOffsets() {
        let rig = Rig()
        let cap = rig.state(\.capability)
        let ecap = rig.state(\.extendedCapability)
        #expect(cap.faultRecordingOffset == Reg.faultRecordingBase)
        #expect(ecap.iotlbRegisterOffset == Reg.invalidateAddress)
        #expect(cap.maximumGuestAddressWidth == 48)
        #expect(cap.numberOfFaultRecords == 1)
    }

    @Test("fault-records sets NFR and grows the window, spec 11.4.2 NFR")
    func faultRecords() {
        let rig = Rig { $0.faultRecords = 8 }
        #expect(rig.read64(Reg.capability) == 0x00d2_078c_222f_0606)
        #expect(rig.unit.windowSize == 0x220 + 8 * 16)
        #expect(rig.read64(Reg.extendedCapability) == 0x0000_0000_00f0_0f4a)
    }

    @Test("page-requests adds PRS, NWFS, PDS and the PASID width, spec 11.4.3")
    func pageRequests() {
        let rig = Rig { $0.scalableMode = true; $0.pasid = true; $0.pageRequests = true; $0.pasidBits = 16 }
        let qemu: UInt64 = 0x0000_4900_80f0_0f4a  // x-scalable-mode=on,x-pasid-mode=on
        let added = rig.read64(Reg.extendedCapability) ^ qemu
        #expect(added == (1 << 29) | (1 << 33) | (1 << 42) | (15 << 35))
        #expect(rig.state(\.extendedCapability).pasidSizeField == 15)
    }

    @Test("nesting adds NEST and SLTS beside FLTS, spec 11.4.3")
    func nesting() {
        let rig = Rig { $0.scalableMode = true; $0.firstLevel = true; $0.nesting = true }
        let qemu: UInt64 = 0x0000_8800_00f0_0f4a  // x-scalable-mode=on,x-flts=on
        #expect(rig.read64(Reg.extendedCapability) ^ qemu == (1 << 26) | (1 << 46))
        #expect(rig.read64(Reg.capability) == 0x01d2_008c_222f_0606)
    }

    @Test("nesting with x-pasid-mode advertises pasid-bits in PSS, spec 11.4.3")
    func nestingPASIDWidth() {
        let rig = Rig { $0.scalableMode = true; $0.firstLevel = true; $0.nesting = true; $0.pasid = true }
        #expect(rig.state(\.extendedCapability).pasidSizeField == 19)
    }

    @Test("slts offers second level beside first level, spec 11.4.3")
    func secondLevelBesideFirst() {
        let rig = Rig { $0.scalableMode = true; $0.firstLevel = true; $0.secondLevelWithFirstLevel = true }
        #expect(rig.read64(Reg.extendedCapability) ^ 0x0000_8800_00f0_0f4a == 1 << 46)
    }

    @Test("fs5lp adds CAP.FS5LP and aw-bits=57 adds five-level SAGAW, spec 11.4.2")
    func fiveLevel() {
        let rig = Rig { $0.scalableMode = true; $0.firstLevel = true; $0.firstLevel5Level = true; $0.addressWidth = 57 }
        let cap = rig.state(\.capability)
        #expect(cap.firstLevel5LevelPaging)
        #expect(cap.supportedAdjustedGuestAddressWidths == 0b1110)
        #expect(cap.maximumGuestAddressWidth == 57)
        #expect(rig.read64(Reg.capability) ^ 0x01d2_008c_222f_0606 == (1 << 60) | (1 << 11) | (UInt64(56 ^ 47) << 16))
    }
}
