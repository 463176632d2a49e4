import Testing
@testable import VTdModel

@Suite("Configuration")
struct ConfigurationTests {
    @Test("QEMU's defaults are valid")
    func defaultsAreValid() {
        #expect(VTdConfiguration().validationError() == nil)
    }

    @Test("x-flts without scalable mode is refused, as QEMU refuses it")
    func firstLevelNeedsScalableMode() {
        var c = VTdConfiguration()
        c.firstLevel = true
        #expect(c.validationError() == "x-flts is only available in scalable mode")
    }
}
