import Testing
@testable import VTdModel

@Suite("Global command and status")
struct GlobalCommandTests {
    @Test("SRTP latches RTADDR and sets RTPS, spec 11.4.4 / 11.4.5")
    func setRootTablePointer() {
        let rig = Rig()
        rig.write64(Reg.rootTableAddress, 0x0000_0001_2345_6000)
        rig.command(.setRootTablePointer)
        #expect(rig.read32(Reg.globalStatus) == GlobalCommand.setRootTablePointer.rawValue)
        #expect(rig.state(\.latchedRootTable) == RootTablePointer(address: 0x1_2345_6000, mode: .legacy))
        // The latch holds until the next SRTP, whatever RTADDR says meanwhile.
        rig.write64(Reg.rootTableAddress, 0x5000)
        #expect(rig.state(\.latchedRootTable)?.address == 0x1_2345_6000)
        rig.command(.setRootTablePointer)
        #expect(rig.state(\.latchedRootTable)?.address == 0x5000)
    }

    @Test("SRTP latches the translation table mode in scalable mode, spec 11.4.6 TTM",
          arguments: [(UInt64(0x000), TranslationTableMode.legacy), (0x400, .scalable), (0x800, .reserved), (0xC00, .abortDMA)])
    func translationTableMode(_ c: (ttm: UInt64, mode: TranslationTableMode)) {
        let rig = Rig { $0.scalableMode = true }
        rig.write64(Reg.rootTableAddress, 0x7000 | c.ttm)
        rig.command(.setRootTablePointer)
        let latched = rig.state(\.latchedRootTable)
        #expect(latched == RootTablePointer(address: 0x7000, mode: c.mode))
        #expect(latched?.isScalable == (c.mode == .scalable))
        #expect(latched?.blocksAllDMA == (c.mode == .reserved || c.mode == .abortDMA))
    }

    @Test("without scalable mode TTM is reserved: the table is legacy whatever the guest writes, spec 11.4.6")
    func legacyOnly() {
        let rig = Rig()
        rig.write64(Reg.rootTableAddress, 0x7400)
        rig.command(.setRootTablePointer)
        #expect(rig.state(\.latchedRootTable) == RootTablePointer(address: 0x7000, mode: .legacy))
    }

    @Test("the latched root address is limited to the host address width, as QEMU does")
    func hostAddressWidth() {
        let rig = Rig { $0.addressWidth = 39 }
        rig.write64(Reg.rootTableAddress, 0xFFFF_FF80_0000_3000)
        rig.command(.setRootTablePointer)
        #expect(rig.state(\.latchedRootTable)?.address == 0x3000)
    }

    @Test("TE sets and clears TES, bumps the generation and asks the host to re-query, spec 11.4.4")
    func translationEnable() {
        let rig = Rig()
        rig.write64(Reg.rootTableAddress, 0x3000)
        rig.command(.setRootTablePointer)
        rig.guest.forgetEvents()
        let generation = rig.state(\.caches.generation)

        rig.command(.translationEnable)
        #expect(GlobalCommand(rawValue: rig.read32(Reg.globalStatus)) == [.translationEnable, .setRootTablePointer])
        #expect(rig.state(\.translationEnabled))
        #expect(rig.state(\.caches.generation) == generation + 1)
        #expect(rig.guest.events == [.contextChanged(sid: nil, pasid: nil)])

        rig.clearCommand(.translationEnable)
        #expect(GlobalCommand(rawValue: rig.read32(Reg.globalStatus)) == [.setRootTablePointer])
        #expect(rig.guest.events.count == 2)
        #expect(rig.guest.guestErrors.isEmpty)
    }

    @Test("writing GCMD with TE unchanged changes nothing, spec 11.4.4")
    func noToggleNoEvent() {
        let rig = Rig()
        rig.command(.translationEnable)
        rig.guest.forgetEvents()
        rig.command([])
        #expect(rig.state(\.translationEnabled))
        #expect(rig.guest.events.isEmpty)
    }

    @Test("TE before any SRTP still enables, but is logged as a guest error, spec 11.4.4")
    func translationWithoutRoot() {
        let rig = Rig()
        rig.command(.translationEnable)
        #expect(rig.state(\.translationEnabled))
        #expect(rig.guest.guestErrors.count == 1)
    }

    @Test("dma-translation=off ignores TE, as QEMU does")
    func translationOff() {
        let rig = Rig { $0.dmaTranslation = false }
        rig.command(.translationEnable)
        #expect(rig.read32(Reg.globalStatus) == 0)
        #expect(rig.guest.events.isEmpty)
    }

    @Test("SIRTP latches IRTA (size 2^(S+1), EIME) and sets IRTPS, spec 11.4.4 / 11.4.8.x")
    func setInterruptRemappingTablePointer() {
        let rig = Rig { $0.extendedInterruptMode = true }
        rig.write64(Reg.interruptRemappingTableAddress, 0x0008_0000 | 1 << 11 | 7)
        rig.command(.setInterruptRemappingTablePointer)
        #expect(rig.read32(Reg.globalStatus) == GlobalCommand.setInterruptRemappingTablePointer.rawValue)
        let latched = rig.state(\.interruptRemapping.latchedTable)
        #expect(latched.base == 0x8_0000 && latched.entryCount == 256 && latched.extendedInterruptMode)
        // The latch holds until the next SIRTP.
        rig.write64(Reg.interruptRemappingTableAddress, 0x9_0000)
        #expect(rig.state(\.interruptRemapping.latchedTable) == latched)
        #expect(rig.guest.events == [.interruptCacheInvalidate(index: 0, count: 0)])
    }

    @Test("IRE and CFI set IRES and CFIS, spec 11.4.4")
    func interruptRemappingEnable() {
        let rig = Rig()
        rig.command(.interruptRemappingEnable)
        #expect(rig.state(\.interruptRemappingEnabled))
        rig.command(.compatibilityFormatInterrupts)
        #expect(rig.state(\.compatibilityFormatInterruptsAllowed))
        #expect(GlobalCommand(rawValue: rig.read32(Reg.globalStatus)) ==
                [.interruptRemappingEnable, .compatibilityFormatInterrupts])
        rig.clearCommand(.interruptRemappingEnable)
        #expect(!rig.state(\.interruptRemappingEnabled))
        #expect(rig.state(\.compatibilityFormatInterruptsAllowed))
    }

    @Test("without interrupt remapping IRE, SIRTP and CFI do nothing, spec 11.4.4")
    func noInterruptRemapping() {
        let rig = Rig { $0.interruptRemapping = false }
        rig.command([.interruptRemappingEnable, .setInterruptRemappingTablePointer, .compatibilityFormatInterrupts])
        #expect(rig.read32(Reg.globalStatus) == 0)
        #expect(rig.state(\.interruptRemapping.latchedTable.rawValue) == 0)
    }

    @Test("WBF completes at once and SFL/EAFL are not supported: no status bit ever sets, spec 11.4.4")
    func unsupportedCommands() {
        let rig = Rig()
        rig.command([.writeBufferFlush, .setFaultLog, .enableAdvancedFaultLogging])
        #expect(rig.read32(Reg.globalStatus) == 0)
    }

    @Test("QIE enables queued invalidation with IQH at 0, spec 6.5.2 / 11.4.4")
    func queuedInvalidationEnable() {
        let rig = Rig()
        rig.write64(Reg.invalidationQueueAddress, 0x4000)
        rig.command(.queuedInvalidationEnable)
        #expect(rig.state(\.queuedInvalidationEnabled))
        #expect(rig.read64(Reg.invalidationQueueHead) == 0)
        #expect(rig.state(\.invalidationQueue.address.base) == 0x4000)
        #expect(rig.state(\.invalidationQueue.address.entryCount) == 256)
    }

    @Test("QIE clear is refused while descriptors are outstanding, then IQH reads 0, spec 6.5.2")
    func queuedInvalidationDisable() {
        let rig = Rig()
        rig.write64(Reg.invalidationQueueAddress, 0x4000)
        rig.command(.queuedInvalidationEnable)
        rig.withState { state, _ in state.invalidationQueue.moveHead(to: 3) }
        rig.write64(Reg.invalidationQueueTail, 5 << 4)
        rig.clearCommand(.queuedInvalidationEnable)
        #expect(rig.state(\.queuedInvalidationEnabled))
        #expect(rig.guest.guestErrors.contains { $0.contains("QIE clear refused") })

        rig.withState { state, _ in state.invalidationQueue.moveHead(to: 5) }
        rig.clearCommand(.queuedInvalidationEnable)
        #expect(!rig.state(\.queuedInvalidationEnabled))
        #expect(rig.read64(Reg.invalidationQueueHead) == 0)
    }

    @Test("enabling QIE with a tail already written runs the queue (Windows does this), spec 6.5.2")
    func enableWithPendingTail() {
        let rig = Rig()
        rig.write64(Reg.invalidationQueueAddress, 0x4000)
        rig.write64(Reg.invalidationQueueTail, 2 << 4)
        let run = rig.withState { state, effects -> Bool in
            state.setQueuedInvalidation(enabled: true, effects: &effects)
            defer { effects.runInvalidationQueue = false }
            return effects.runInvalidationQueue
        }
        #expect(run)
    }
}
