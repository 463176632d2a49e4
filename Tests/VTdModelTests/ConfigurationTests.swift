import Testing
@testable import VTdModel

@Suite("Configuration")
struct ConfigurationTests {
    @Test("QEMU's defaults are valid")
    func defaultsAreValid() {
        #expect(VTdConfiguration().validationError() == nil)
    }

    @Test("fsts (x-flts) without scalable mode is refused, as QEMU refuses it")
    func firstLevelNeedsScalableMode() {
        var c = VTdConfiguration()
        c.firstLevel = true
        #expect(c.validationError() == "fsts is only available in scalable mode")
    }
}
