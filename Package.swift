// swift-tools-version:6.0
// SwiftVTd: an emulated Intel VT-d IOMMU as a shared library with a C ABI.
// Layers, top to bottom (nothing below imports anything above):
//   SwiftVTd (C ABI exports) -> HostAttachment (host devices: the decision, the model -> backend adapter)
//   -> VTdModel (the pure VT-d model) ; HostIOMMU (Linux host backends)
//   -> VTdSpec (layouts and identifiers both of those share)
import PackageDescription

let package = Package(
    name: "SwiftVTd",
    products: [
        // libSwiftVTd.so: the only thing QEMU's glue loads.
        .library(name: "SwiftVTd", type: .dynamic, targets: ["SwiftVTd"]),
        .executable(name: "vtd-bench", targets: ["vtd-bench"]),
        .executable(name: "host-bench", targets: ["host-bench"]),
    ],
    targets: [
        // The public C header (CInterop/include/swiftvtd.h) and its layout asserts.
        .target(
            name: "CSwiftVTd",
            path: "CInterop",
            exclude: ["LinuxUAPI"],
            sources: ["abi"],
            publicHeadersPath: "include"
        ),
        // The spec's layouts and identifiers: bit fields (one way to declare them), CAP/ECAP,
        // RequesterID/PASID/DomainID, architectural limits and address ranges. No logic.
        .target(
            name: "VTdSpec",
            path: "Sources/VTdSpec"
        ),
        // The VT-d model: registers, tables, walkers, caches, invalidation, faults.
        // No I/O except through the Platform protocol.
        .target(
            name: "VTdModel",
            dependencies: ["VTdSpec"],
            path: "Sources/VTdModel"
        ),
        // The exported C ABI: checks and converts C types, calls the model and HostAttachment.
        .target(
            name: "SwiftVTd",
            dependencies: ["CSwiftVTd", "VTdSpec", "VTdModel", "HostIOMMU", "HostAttachment"],
            path: "Sources/SwiftVTd"
        ),
        // Host devices behind a unit: the host-mode decision at machine-init-done and the adapter
        // from the model's HostBindingObserver to the nested backend. Knows no C type.
        .target(
            name: "HostAttachment",
            dependencies: ["VTdSpec", "VTdModel", "HostIOMMU"],
            path: "Sources/HostAttachment"
        ),
        // Linux iommufd/VFIO uAPI: ioctl numbers and struct layouts as Swift sees them, checked at
        // compile time against the kernel's own headers vendored in linux-headers/.
        .target(
            name: "LinuxUAPI",
            path: "CInterop/LinuxUAPI",
            exclude: ["linux-headers/VERSION"],
            cSettings: [.headerSearchPath("linux-headers")]
        ),
        // Host IOMMU backends (nested iommufd, shadowing, negotiation). Below the model: never imports it.
        .target(
            name: "HostIOMMU",
            dependencies: ["VTdSpec", "LinuxUAPI"],
            path: "Sources/HostIOMMU"
        ),
        // A test double of the kernel's iommufd and VFIO cdev, installed at HostIOMMU's IoctlSeam.
        // Never linked into libSwiftVTd.so; used by tests and host-bench.
        .target(
            name: "HostIOMMUTesting",
            dependencies: ["HostIOMMU", "LinuxUAPI"],
            path: "Sources/HostIOMMUTesting"
        ),
        .executableTarget(
            name: "host-bench",
            dependencies: ["HostIOMMU", "HostIOMMUTesting", "VTdModel"],
            path: "Sources/host-bench"
        ),
        .executableTarget(
            name: "vtd-bench",
            dependencies: ["SwiftVTd", "CSwiftVTd", "VTdModel"],
            path: "Sources/vtd-bench",
            // Its guest RAM and counters are top-level globals that the C callbacks reach: main-actor
            // state in Swift 6. A single-threaded benchmark; not worth a rewrite.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // ThreadSanitizer builds: lets TSan see contended Synchronization.Mutex handoffs
        // (Tests/TSanMutexShim/tsan_mutex_shim.c says why). Empty in other builds.
        .target(
            name: "TSanMutexShim",
            path: "Tests/TSanMutexShim"
        ),
        .testTarget(
            name: "VTdModelTests",
            dependencies: ["VTdModel", "TSanMutexShim"],
            path: "Tests/VTdModelTests",
            // Test doubles record callbacks into plain classes and globals.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "HostIOMMUTests",
            dependencies: ["HostIOMMU", "HostIOMMUTesting"],
            path: "Tests/HostIOMMUTests",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "SwiftVTdTests",
            dependencies: ["SwiftVTd", "CSwiftVTd", "VTdModel", "HostIOMMU", "HostIOMMUTesting", "HostAttachment"],
            path: "Tests/SwiftVTdTests",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ],
    // The library targets and host-bench are checked by Swift 6's data-race rules (translate runs
    // on any QEMU thread); tests and vtd-bench say above why they stay in Swift 5 mode.
    swiftLanguageModes: [.v6]
)
