// swiftvtd_config <-> VTdConfiguration, with the checks a C caller can get wrong.

import CSwiftVTd
import VTdModel

enum CConfiguration {
    static func encode(_ c: VTdConfiguration) -> swiftvtd_config {
        var cfg = swiftvtd_config()
        cfg.size = UInt32(MemoryLayout<swiftvtd_config>.size)
        cfg.abi_version = SWIFTVTD_ABI_VERSION
        cfg.aw_bits = UInt8(c.addressWidth)
        cfg.caching_mode = c.cachingMode ? 1 : 0
        cfg.scalable_mode = c.scalableMode ? 1 : 0
        cfg.flts = c.firstLevel ? 1 : 0
        cfg.pasid = c.pasid ? 1 : 0
        cfg.intremap = c.interruptRemapping ? 1 : 0
        cfg.eim = c.extendedInterruptMode ? 1 : 0
        cfg.device_iotlb = c.deviceIOTLB ? 1 : 0
        cfg.pt = c.passThrough ? 1 : 0
        cfg.dma_drain = c.dmaDrain ? 1 : 0
        cfg.snoop_control = c.snoopControl ? 1 : 0
        cfg.dma_translation = c.dmaTranslation ? 1 : 0
        cfg.stale_tm = c.staleTM ? 1 : 0
        cfg.fs1gp = c.firstLevel1GPages ? 1 : 0
        cfg.slts = c.secondLevelWithFirstLevel ? 1 : 0
        cfg.nesting = c.nesting ? 1 : 0
        cfg.page_requests = c.pageRequests ? 1 : 0
        cfg.fs5lp = c.firstLevel5Level ? 1 : 0
        cfg.pasid_bits = UInt8(c.pasidBits)
        cfg.fault_records = UInt16(c.faultRecords)
        cfg.iotlb_capacity = UInt32(c.iotlbCapacity)
        return cfg
    }

    static func decode(_ p: UnsafePointer<swiftvtd_config>) -> Result<VTdConfiguration, ConfigurationError> {
        // Read size and version before touching anything a differently sized struct may not have.
        let raw = UnsafeRawPointer(p)
        let version = raw.load(fromByteOffset: 4, as: UInt32.self)
        guard version == SWIFTVTD_ABI_VERSION else {
            return .failure(ConfigurationError(
                "swiftvtd_create: ABI version \(version) requested, this library implements \(SWIFTVTD_ABI_VERSION)"))
        }
        // Fields an older host does not know keep their defaults.
        var cfg = encode(VTdConfiguration())
        if let problem = SizedStruct.read(raw, into: &cfg, minimum: SizedStruct.configMinimum, name: "config") {
            return .failure(ConfigurationError("swiftvtd_create: \(problem)"))
        }
        guard cfg.reserved0 == 0, cfg.reserved1 == 0, cfg.reserved2 == 0, cfg.reserved3 == 0 else {
            return .failure(ConfigurationError("swiftvtd_create: reserved config fields must be zero"))
        }
        let flags: [(String, UInt8)] = [
            ("caching-mode", cfg.caching_mode), ("scalable-mode", cfg.scalable_mode), ("fsts", cfg.flts),
            ("pasid", cfg.pasid), ("intremap", cfg.intremap), ("eim", cfg.eim),
            ("device-iotlb", cfg.device_iotlb), ("pt", cfg.pt), ("dma-drain", cfg.dma_drain),
            ("snoop-control", cfg.snoop_control), ("dma-translation", cfg.dma_translation),
            ("stale-tm", cfg.stale_tm), ("fs1gp", cfg.fs1gp), ("slts", cfg.slts), ("nesting", cfg.nesting),
            ("page-requests", cfg.page_requests), ("fs5lp", cfg.fs5lp), ("eim_auto", cfg.eim_auto),
            ("kvm_irqchip", cfg.kvm_irqchip), ("x-buggy-eim", cfg.buggy_eim), ("svm", cfg.svm),
        ]
        for (name, value) in flags where value > 1 {
            return .failure(ConfigurationError("swiftvtd_create: \(name) must be 0 or 1 (got \(value))"))
        }
        var c = VTdConfiguration()
        c.addressWidth = Int(cfg.aw_bits)
        c.cachingMode = cfg.caching_mode != 0
        c.scalableMode = cfg.scalable_mode != 0
        c.firstLevel = cfg.flts != 0
        c.pasid = cfg.pasid != 0
        c.interruptRemapping = cfg.intremap != 0
        c.extendedInterruptMode = cfg.eim != 0
        c.deviceIOTLB = cfg.device_iotlb != 0
        c.passThrough = cfg.pt != 0
        c.dmaDrain = cfg.dma_drain != 0
        c.snoopControl = cfg.snoop_control != 0
        c.dmaTranslation = cfg.dma_translation != 0
        c.staleTM = cfg.stale_tm != 0
        c.firstLevel1GPages = cfg.fs1gp != 0
        c.secondLevelWithFirstLevel = cfg.slts != 0
        c.nesting = cfg.nesting != 0
        c.pageRequests = cfg.page_requests != 0
        c.firstLevel5Level = cfg.fs5lp != 0
        c.pasidBits = Int(cfg.pasid_bits)
        c.faultRecords = Int(cfg.fault_records)
        c.iotlbCapacity = Int(cfg.iotlb_capacity)
        guard cfg.eim_auto == 0 || cfg.eim == 0 else {
            return .failure(ConfigurationError("swiftvtd_create: eim_auto with eim set: eim is resolved, not given"))
        }
        let facts = HostFacts(eimAuto: cfg.eim_auto != 0, kvmIrqchipInKernel: cfg.kvm_irqchip != 0,
                              buggyEIM: cfg.buggy_eim != 0, svm: cfg.svm != 0)
        if let problem = c.resolve(facts) { return .failure(ConfigurationError("swiftvtd_create: \(problem)")) }
        if let problem = c.validationError() { return .failure(ConfigurationError("swiftvtd_create: \(problem)")) }
        return .success(c)
    }
}
