# Included by the top-level Makefile.
#   make host-kernel   the testbed's kernel: linux-source 7.3 with IOMMUFD and VFIO (cached)
#   make host-test     swift-vtd as L1's IOMMU, the project's QEMU in L1 nesting and shadowing
#                      edu and nvme assigned to an L2 guest (see Tests/host/run-host-tests.py)
# HOST_TEST_ARGS passes extra arguments to the runner (e.g. --only swift, --rounds N); with
# --profile in them, L1's image also carries perf (see docs/HOST.md, "Profiling L1's QEMU").
SWIFTVTD_CACHE ?= /var/cache/swiftvtd
HOST_TEST_ARGS ?=

.PHONY: host-kernel host-test
host-kernel:
	scripts/build-host-kernel.sh

host-test: qemu lib
	@kernel=$$(scripts/build-host-kernel.sh | tail -1) && \
	qemu=$$(readlink -f $(SWIFTVTD_CACHE)/qemu/current)/qemu-system-x86_64 && \
	images=$$($(if $(findstring --profile,$(HOST_TEST_ARGS)),SWIFTVTD_HOST_PERF=1) Tests/host/build-images.sh $$qemu $(abspath $(LIB)) $$kernel | tail -1) && \
	python3 Tests/host/run-host-tests.py --qemu $$qemu --library $(abspath $(LIB)) \
		--kernel $$kernel --images $$images $(HOST_TEST_ARGS)
