# Included by the top-level Makefile. `make qemu` builds the project's QEMU (Debian 13's
# QEMU 10.0 source patched with qemu-glue/) under $(SWIFTVTD_CACHE)/qemu; reruns are
# incremental. The binary is $(SWIFTVTD_QEMU).
SWIFTVTD_CACHE ?= /var/cache/swiftvtd
SWIFTVTD_QEMU  ?= $(SWIFTVTD_CACHE)/qemu/current/qemu-system-x86_64
export SWIFTVTD_CACHE

.PHONY: qemu
qemu:
	scripts/build-qemu.sh
