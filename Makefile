# SwiftVTd entry points. `make` builds libSwiftVTd.so; `make demo` also builds the patched
# QEMU and boots a guest through it; `make test` runs every test, guest suite included.
SWIFT     ?= swift
CC        ?= cc
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BUILD_DIR := .build/release
LIB       := $(BUILD_DIR)/libSwiftVTd.so
# The library's version lives in the header: MAJOR (the ABI, the SONAME's number).MINOR.MICRO.
HEADER    := CInterop/include/swiftvtd.h
ABI_MAJOR := $(shell sed -n 's/^\#define SWIFTVTD_ABI_VERSION \([0-9]*\)u.*/\1/p' $(HEADER))
LIB_VERSION := $(ABI_MAJOR).$(shell sed -n 's/^\#define SWIFTVTD_VERSION_MINOR \([0-9]*\).*/\1/p' $(HEADER)).$(shell sed -n 's/^\#define SWIFTVTD_VERSION_MICRO \([0-9]*\).*/\1/p' $(HEADER))
SONAME    := libSwiftVTd.so.$(ABI_MAJOR)
# The Swift runtime is linked in statically, and its symbols hidden, so the .so loads
# into a C process (QEMU) on a machine without the Swift toolchain.
RELEASE_FLAGS := -c release -Xswiftc -static-stdlib -Xlinker --exclude-libs=ALL
# The shipped library: a SONAME, and only swiftvtd_* exported (CInterop/libSwiftVTd.map).
LIB_FLAGS := $(RELEASE_FLAGS) -Xlinker -soname=$(SONAME) -Xlinker --version-script=$(abspath CInterop/libSwiftVTd.map)
# The shipped library and the benchmarks leave out the run-time exclusivity checks: every
# access to a class's stored var otherwise calls swift_beginAccess (a thread-local lookup and an
# access-set insert), about 1,300 instructions per shadow re-sync and a tenth of the queue run's
# (docs/PERFORMANCE.md). The compile-time checks stay, and the tests and the sanitizer and fuzz
# builds keep the run-time ones.
UNCHECKED := -Xswiftc -enforce-exclusivity=unchecked
GLIB_FLAGS = $(shell pkg-config --cflags --libs glib-2.0 gmodule-2.0)
# Big downloads and builds (QEMU, guest kernels): /var/cache/swiftvtd, or the per-user cache
# when that is not writable (scripts/cache-dir.sh). The included makefiles use this value.
ifeq ($(origin SWIFTVTD_CACHE),undefined)
SWIFTVTD_CACHE := $(shell scripts/cache-dir.sh)
endif
export SWIFTVTD_CACHE

.PHONY: all lib deps check test test-swift test-c test-fuzz test-asan test-tsan fuzz fuzz-build fuzz-merge bench \
	install uninstall clean
all: lib

lib:
	$(SWIFT) build $(LIB_FLAGS) $(UNCHECKED) --product SwiftVTd

# Debian packages for the C ABI test and the fuzz harnesses (installs only what is missing).
deps:
	scripts/install-deps.sh

# Model and ABI tests first (fast), then real guests through QEMU (builds QEMU and the
# guest images on first use, cached under $(SWIFTVTD_CACHE)). The host testbed
# (make host-test) is not part of it: with its kernel build and its nested guests it would
# take a fresh machine past the 45 minutes CI has.
test: deps test-swift test-c test-fuzz guest-test

# The fast offline subset: the Swift suites and the C ABI test; no fuzzing, no guests.
check: test-swift test-c

test-swift:
	$(SWIFT) test

# The C ABI test loads the built .so with GModule, as QEMU's glue does.
$(BUILD_DIR)/abi-test: Tests/CABI/abi_test.c CInterop/include/swiftvtd.h
	@mkdir -p $(BUILD_DIR)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -ICInterop/include $< -o $@ $(GLIB_FLAGS)

test-c: lib $(BUILD_DIR)/abi-test
	SWIFTVTD_LIBRARY=$(abspath $(LIB)) $(BUILD_DIR)/abi-test
	@readelf -d $(LIB) | grep -q 'Library soname: \[$(SONAME)\]' || { echo "$(LIB): SONAME is not $(SONAME)"; exit 1; }
	@extra=$$(readelf --dyn-syms -W $(LIB) | awk '$$5 == "GLOBAL" && $$7 != "UND" && $$8 !~ /^swiftvtd_/ && $$8 != "SWIFTVTD_$(ABI_MAJOR)"'); \
		[ -z "$$extra" ] || { echo "$(LIB) exports more than swiftvtd_*:"; echo "$$extra"; exit 1; }; \
		echo "$(LIB): SONAME $(SONAME), exports $$(readelf --dyn-syms -W $(LIB) | awk '$$5 == "GLOBAL" && $$7 != "UND" && $$8 ~ /^swiftvtd_/' | wc -l) swiftvtd_* symbols and nothing else"

# Sanitizer and fuzz builds use the Swift toolchain's own clang: its runtimes match swiftc's.
SAN_CC := $(dir $(realpath $(shell command -v $(SWIFT))))clang

# The Swift tests, then the C ABI test with library and test program built for the sanitizer.
# Each sanitizer has its own build folder, so switching never rebuilds the others.
test-asan: SAN := address
test-tsan: SAN := thread
# The toolchain's TSan runtime intercepts libdispatch, so a C program linking it needs the
# toolchain's libdispatch too.
SWIFT_RUNTIME_DIR := $(dir $(SAN_CC))../lib/swift/linux
test-tsan: SAN_LIBS := -L$(SWIFT_RUNTIME_DIR) -ldispatch -lBlocksRuntime -Wl,-rpath,$(SWIFT_RUNTIME_DIR)
test-asan test-tsan:
	$(SWIFT) test --scratch-path .build-$(SAN) --sanitize=$(SAN) --disable-xctest
	$(SWIFT) build --scratch-path .build-$(SAN) $(LIB_FLAGS) -Xswiftc -sanitize=$(SAN) --product SwiftVTd
	$(SAN_CC) -std=gnu11 -O1 -g -fsanitize=$(SAN) -fuse-ld=lld -Wall -Wextra -Werror -ICInterop/include \
		Tests/CABI/abi_test.c -o .build-$(SAN)/abi-test $(GLIB_FLAGS) $(SAN_LIBS)
	SWIFTVTD_LIBRARY=$(abspath .build-$(SAN)/release/libSwiftVTd.so) .build-$(SAN)/abi-test

# libFuzzer targets (Tests/Fuzz/fuzz_<target>.c) drive the C ABI against a library built with
# AddressSanitizer and coverage instrumentation. `make fuzz FUZZ_SECONDS=N` runs each for N
# seconds; `make test` runs each briefly over its committed corpus.
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 5
FUZZ_TARGETS := mmio qi translate irq prq state
FUZZ_DIR := .build-fuzz
FUZZ_LIB_FLAGS := $(LIB_FLAGS) --scratch-path $(FUZZ_DIR) -Xswiftc -sanitize=address \
	-Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp

fuzz-build:
	$(SWIFT) build $(FUZZ_LIB_FLAGS) --product SwiftVTd
	ln -sf libSwiftVTd.so $(FUZZ_DIR)/release/$(SONAME)
	@for t in $(FUZZ_TARGETS); do \
		echo "$(SAN_CC) ... Tests/Fuzz/fuzz_$$t.c -o $(FUZZ_DIR)/fuzz-$$t"; \
		$(SAN_CC) -std=gnu11 -O1 -g -fsanitize=fuzzer,address -fuse-ld=lld -Wall -Wextra -Werror -ICInterop/include \
			Tests/Fuzz/fuzz_$$t.c -o $(FUZZ_DIR)/fuzz-$$t -L$(FUZZ_DIR)/release -lSwiftVTd \
			-Wl,-rpath,$(abspath $(FUZZ_DIR)/release) || exit 1; \
	done

fuzz: fuzz-build
	Tests/Fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test-fuzz: fuzz-build
	Tests/Fuzz/run.sh $(FUZZ_DIR) $(FUZZ_TEST_SECONDS) $(FUZZ_TARGETS)

# Replaces each committed corpus with the smallest set of inputs, old and new, that covers
# everything they cover together.
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		rm -rf $(FUZZ_DIR)/merged/$$t && mkdir -p $(FUZZ_DIR)/merged/$$t $(FUZZ_DIR)/logs && \
		$(FUZZ_DIR)/fuzz-$$t -set_cover_merge=1 $(FUZZ_DIR)/merged/$$t Tests/Fuzz/corpus/$$t \
			$(FUZZ_DIR)/corpus/$$t 2>$(FUZZ_DIR)/logs/merge-$$t.log && \
		rm -rf Tests/Fuzz/corpus/$$t && mv $(FUZZ_DIR)/merged/$$t Tests/Fuzz/corpus/$$t && \
		echo "corpus $$t: $$(ls Tests/Fuzz/corpus/$$t | wc -l) inputs" || exit 1; \
	done

bench:
	$(SWIFT) build $(RELEASE_FLAGS) $(UNCHECKED) --product vtd-bench
	$(BUILD_DIR)/vtd-bench
	$(SWIFT) build $(RELEASE_FLAGS) $(UNCHECKED) --product host-bench
	$(BUILD_DIR)/host-bench

# As shared libraries are installed: the real file carries the full version, the SONAME link
# is what programs load, the unversioned link is what -lSwiftVTd finds. swiftvtd.pc tells
# `make qemu` (and anyone using pkg-config) where the library is.
install: lib
	install -D -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libSwiftVTd.so.$(LIB_VERSION)
	ln -sfn libSwiftVTd.so.$(LIB_VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libSwiftVTd.so
	install -D -m 0644 $(HEADER) $(DESTDIR)$(INCLUDEDIR)/swiftvtd.h
	@mkdir -p $(DESTDIR)$(LIBDIR)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
		-e 's|@VERSION@|$(LIB_VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' \
		swiftvtd.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/swiftvtd.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libSwiftVTd.so.$(LIB_VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/libSwiftVTd.so $(DESTDIR)$(INCLUDEDIR)/swiftvtd.h \
		$(DESTDIR)$(LIBDIR)/pkgconfig/swiftvtd.pc

# Every build folder this Makefile creates (release, sanitizers, fuzzing).
clean:
	rm -rf .build .build-address .build-thread $(FUZZ_DIR)

-include qemu-glue/qemu.mk
-include Tests/guest/guest.mk
-include Tests/host/host.mk
