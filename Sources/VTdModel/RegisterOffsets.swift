// Register offsets in the remapping unit's MMIO window (VT-d spec 10.4, QEMU's layout).
// IVA/IOTLB sit where ECAP.IRO says and the fault recording registers where CAP.FRO says;
// both keep QEMU's places (IRO 0xF, FRO 0x22). More fault records only lengthen the window.

public enum Reg {
    public static let version = 0x00        // VER (32)
    public static let capability = 0x08     // CAP (64)
    public static let extendedCapability = 0x10 // ECAP (64)
    public static let globalCommand = 0x18  // GCMD (32)
    public static let globalStatus = 0x1C   // GSTS (32)
    public static let rootTableAddress = 0x20 // RTADDR (64)
    public static let contextCommand = 0x28 // CCMD (64)
    public static let faultStatus = 0x34    // FSTS (32)
    public static let faultEventControl = 0x38 // FECTL
    public static let faultEventData = 0x3C    // FEDATA
    public static let faultEventAddress = 0x40 // FEADDR
    public static let faultEventUpperAddress = 0x44 // FEUADDR
    public static let advancedFaultLog = 0x58 // AFLOG (64)
    public static let protectedMemoryEnable = 0x64 // PMEN
    public static let protectedLowBase = 0x68      // PLMBASE
    public static let protectedLowLimit = 0x6C     // PLMLIMIT
    public static let protectedHighBase = 0x70     // PHMBASE (64)
    public static let protectedHighLimit = 0x78    // PHMLIMIT (64)
    public static let invalidationQueueHead = 0x80 // IQH (64)
    public static let invalidationQueueTail = 0x88 // IQT (64)
    public static let invalidationQueueAddress = 0x90 // IQA (64)
    public static let invalidationCompletionStatus = 0x9C // ICS
    public static let invalidationEventControl = 0xA0 // IECTL
    public static let invalidationEventData = 0xA4    // IEDATA
    public static let invalidationEventAddress = 0xA8 // IEADDR
    public static let invalidationEventUpperAddress = 0xAC // IEUADDR
    public static let invalidationQueueErrorRecord = 0xB0 // IQERCD (64)
    public static let interruptRemappingTableAddress = 0xB8 // IRTA (64)
    public static let pageRequestQueueHead = 0xC0  // PQH (64)
    public static let pageRequestQueueTail = 0xC8  // PQT (64)
    public static let pageRequestQueueAddress = 0xD0 // PQA (64)
    public static let pageRequestStatus = 0xDC     // PRS
    public static let pageRequestEventControl = 0xE0 // PECTL
    public static let pageRequestEventData = 0xE4    // PEDATA
    public static let pageRequestEventAddress = 0xE8 // PEADDR
    public static let pageRequestEventUpperAddress = 0xEC // PEUADDR
    /// IVA at ECAP.IRO x 16 (QEMU: IRO = 0xF), IOTLB 8 bytes after it.
    public static let invalidateAddress = 0xF0
    public static let iotlbInvalidate = 0xF8
    /// First fault recording register at CAP.FRO x 16 (QEMU: FRO = 0x22); 16 bytes each.
    public static let faultRecordingBase = 0x220
    public static let faultRecordingSize = 16
    /// QEMU's window size with one fault record.
    public static let defaultWindowSize = 0x230

    /// Window size with `faultRecords` FRCD registers.
    public static func windowSize(faultRecords: Int) -> Int {
        faultRecordingBase + faultRecordingSize * faultRecords
    }
}
