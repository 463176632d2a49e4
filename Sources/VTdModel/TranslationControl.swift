// What translate needs from the register side: is DMA remapping on, and which root table
// did SRTP latch. Read under the state lock.

/// The root table as SRTP latched it (RTADDR.RTA and TTM).
struct TranslationRoot: Equatable, Sendable {
    var address: UInt64
    var isScalable: Bool
}

extension UnitState {
    /// GSTS.TES.
    var isTranslationEnabled: Bool { registers.get32(Reg.globalStatus) & (1 << 31) != 0 }

    /// The latched root table. Before the first SRTP it is RTADDR's reset value, address 0,
    /// legacy mode, which is what hardware walks if a guest enables translation first.
    var translationRoot: TranslationRoot {
        let rtaddr = registers.get64(Reg.rootTableAddress)
        // TTM (11:10) = 01 selects scalable mode, only on a unit that has it (ECAP.SMTS).
        let scalable = configuration.scalableMode && (rtaddr >> 10) & 0b11 == 0b01
        return TranslationRoot(address: rtaddr & ~0xFFF, isScalable: scalable)
    }
}
