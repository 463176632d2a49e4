# Included by the top-level Makefile.
#   make guest-images   kernels + test initramfs from Debian packages (cached)
#   make guest-test     boots every variant: intel-iommu (reference) and swift-vtd
#   make guest-test-reference / guest-test-swift   one group only
#   make demo           builds the library and QEMU if needed, boots 6.12 through swift-vtd
#                       in first-level scalable mode and prints the guest's report
# GUEST_TEST_ARGS passes extra arguments to the runner (e.g. variant names).
SWIFTVTD_CACHE ?= /var/cache/swiftvtd
GUEST_RUNNER   := python3 Tests/guest/run-guest-tests.py
GUEST_TEST_ARGS ?=
SWIFTVTD_LIBRARY ?= $(abspath .build/release/libSwiftVTd.so)

.PHONY: guest-images guest-test guest-test-reference guest-test-swift demo
guest-images:
	Tests/guest/build-images.sh

guest-test: qemu guest-images lib
	$(GUEST_RUNNER) --library $(SWIFTVTD_LIBRARY) $(GUEST_TEST_ARGS)

guest-test-reference: qemu guest-images
	$(GUEST_RUNNER) --group reference $(GUEST_TEST_ARGS)

guest-test-swift: qemu guest-images lib
	$(GUEST_RUNNER) --group swift --library $(SWIFTVTD_LIBRARY) $(GUEST_TEST_ARGS)

demo: lib qemu
	Tests/guest/build-images.sh 6.12
	$(GUEST_RUNNER) --library $(SWIFTVTD_LIBRARY) --show-report swift-flts-6.12 intel-flts-6.12
