# Included by the top-level Makefile.
#   make guest-images   kernels + test initramfs from Debian packages (cached)
#   make guest-test     boots every variant: intel-iommu (reference) and swift-vtd
#   make guest-test-reference / guest-test-swift   one group only
#   make demo           builds the library and QEMU if needed, boots 6.12 through swift-vtd
#                       in first-level scalable mode and prints the guest's report
#   make bench-guest    issue 12's DMA benchmark: a 6.1 guest's O_DIRECT disk reads under perf,
#                       no IOMMU / intel-iommu / swift-vtd in four modes, interleaved; prints
#                       time per I/O and vIOMMU samples per 1,000 I/Os (BENCH_GUEST_ARGS adds options)
# GUEST_TEST_ARGS passes extra arguments to the runner (e.g. variant names).
SWIFTVTD_CACHE ?= /var/cache/swiftvtd
GUEST_RUNNER   := python3 Tests/guest/run-guest-tests.py
GUEST_TEST_ARGS ?=
BENCH_GUEST_ARGS ?=
SWIFTVTD_LIBRARY ?= $(abspath .build/release/libSwiftVTd.so)

.PHONY: guest-images guest-test guest-test-reference guest-test-swift demo bench-guest
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

# perf comes from Debian's linux-perf (ensure_debs installs it when missing).
bench-guest: lib qemu
	Tests/guest/build-images.sh 6.1
	bash -c '. scripts/lib/common.sh && ensure_debs linux-perf'
	python3 Tests/guest/bench-guest.py --library $(SWIFTVTD_LIBRARY) $(BENCH_GUEST_ARGS)
