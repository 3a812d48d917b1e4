# pagelab: build, run, check.  GNU make; no autotools.
#   make                  build every binary for this system
#   make run              the main job: conformance + perf + report in results/<run-id>/
#   make check            the project's tests and the conformance suite
#   make check-quick      C tests, harness self-tests, quick host tests: no installs, no root
#   make STATIC=1         static link (e.g. make CC=musl-gcc STATIC=1)
#   make SANITIZE=address,undefined
#   make PORTABLE=1       no optional libraries (portable benchmark back-end, no hwloc/libpfm4)
#   make PLATFORM=generic the portable POSIX page layer instead of this OS's own file
#   make CC=aarch64-linux-gnu-gcc   cross build: the feature probe only compiles
#   make TARGET=windows   Windows binaries (.exe) with Debian's mingw-w64, in build/windows
#   make TARGET=freebsd|macos ARCH=x86_64|aarch64   with Zig's cross toolchain (pip install ziglang)
#   make WERROR=1         warnings are errors (the feature probe still compiles without -Werror)

.DEFAULT_GOAL := all

# TARGET=windows: Debian's mingw-w64 cross compiler, and a build directory of its own.
# TARGET=freebsd|macos (ARCH=x86_64|aarch64): Zig's cross toolchain (pip install ziglang), which
# carries FreeBSD's and macOS's own headers and link stubs. Users on those systems build natively
# with their own cc and make instead (plain `make`).
ZIG      ?= python3 -m ziglang
ARCH     ?= x86_64
ifeq ($(TARGET),windows)
CC       := x86_64-w64-mingw32-gcc
CXX      := x86_64-w64-mingw32-g++
BUILD    ?= build/windows
else ifneq ($(filter freebsd macos,$(TARGET)),)
ifeq ($(filter x86_64 aarch64,$(ARCH)),)
$(error ARCH=$(ARCH): TARGET=$(TARGET) builds for x86_64 or aarch64)
endif
# FreeBSD 14's libc and macOS's libSystem, linked dynamically against their stubs (Zig links neither statically).
ZIG_TRIPLE := $(if $(filter freebsd,$(TARGET)),$(ARCH)-freebsd.14.0-none,$(ARCH)-macos.13.0-none)
CC       := $(ZIG) cc -target $(ZIG_TRIPLE)
CXX      := $(ZIG) c++ -target $(ZIG_TRIPLE)
AR       := $(ZIG) ar
BUILD    ?= build/$(TARGET)-$(ARCH)
PORTABLE := 1
# Zig caches what it builds (libc stubs, compiler-rt): in the build directory, never in $HOME.
export ZIG_GLOBAL_CACHE_DIR ?= $(abspath $(BUILD))/zig-cache
export ZIG_LOCAL_CACHE_DIR ?= $(abspath $(BUILD))/zig-cache
else ifneq ($(TARGET),)
$(error TARGET=$(TARGET): the target OS is chosen by the compiler (CC=...); TARGET names windows, freebsd and macos)
endif

CC       ?= cc
CXX      ?= c++
BUILD    ?= build
PYTHON   ?= /usr/bin/python3
STATIC   ?= 0
PORTABLE ?= 0
SANITIZE ?=
WERROR   ?= 0
V        ?= 0

ifeq ($(origin CC),default)
CC := cc
endif

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CSTD      := -std=c11
OPT       ?= -O2 -g
CPPFLAGS  += -Iinclude -I$(BUILD) -D_GNU_SOURCE
CFLAGS    += $(OPT) $(WARN) $(CSTD) -fno-strict-aliasing
CXXFLAGS  += $(OPT) -Wall -Wextra -std=c++17
LDFLAGS   +=
LDLIBS    += -lpthread -lm

# Not in CFLAGS: the feature probe must see the same answers with and without it.
WERROR_FLAG := $(if $(filter 1,$(WERROR)),-Werror)

ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
CXXFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif
ifeq ($(STATIC),1)
LDFLAGS  += -static
endif

# The feature probe runs whenever the compiler or the flags change.
CONFIG_KEY := $(CC)|$(CXX)|$(CFLAGS)|$(LDFLAGS)|$(PORTABLE)|$(STATIC)
$(shell mkdir -p $(BUILD))
$(shell [ -f $(BUILD)/config.key ] && [ "`cat $(BUILD)/config.key`" = "$(CONFIG_KEY)" ] || echo '$(CONFIG_KEY)' > $(BUILD)/config.key)
CONFIG_PORTABLE := $(PORTABLE)
ifeq ($(STATIC),1)
# Static C++ and the optional shared libraries rarely link statically: build the portable variant.
CONFIG_PORTABLE := 1
endif
$(BUILD)/config.h $(BUILD)/config.mk: tools/configure.sh $(BUILD)/config.key
	@echo "  CONFIGURE $(CC)"
	@sh tools/configure.sh $(BUILD) "$(CC)" "$(CPPFLAGS) $(CFLAGS)" "$(LDFLAGS)" "$(CXX)" $(CONFIG_PORTABLE)
-include $(BUILD)/config.mk

# The page layer and OS files: this system's own where it has them, else
# the generic POSIX ones (a port starts there: PORTING.md).
PLATFORM ?= $(PLATFORM_DETECTED)
LAYER := $(if $(PLATFORM),$(if $(wildcard lib/platform/$(PLATFORM).c),$(PLATFORM),generic),generic)
# (Before the first configure there is no PLATFORM yet: make reads this file
# again once config.mk exists, so say nothing then.)
ifneq ($(LAYER),$(PLATFORM))
ifneq ($(PLATFORM),)
ifneq ($(MAKECMDGOALS),clean)
$(info pagelab: no page layer of its own for '$(PLATFORM)' (lib/platform/$(PLATFORM).c): building the generic POSIX layer)
endif
endif
endif
FAMILY := $(if $(filter windows,$(LAYER)),win32,posix)
CPPFLAGS += -Ilib/platform/abi/$(LAYER)
# Windows programs carry .exe; mingw-w64 follows C99 in printf (%zu, %llu) and declares localtime_r only when asked.
EXE := $(if $(filter win32,$(FAMILY)),.exe,)
ifeq ($(FAMILY),win32)
CPPFLAGS += -D__USE_MINGW_ANSI_STDIO=1 -D_POSIX_THREAD_SAFE_FUNCTIONS=200112L
# Static: neither Windows nor Wine has mingw-w64's own DLLs (winpthread, libgcc) on its path.
LDFLAGS  += -static
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- sources: found by wildcard; a new file registers itself ----
# Per OS: lib/platform/<layer>.c and <layer>_*.c over the family's shared file
# (posix.c); lib/os/*_<family>.c and *_<layer>.c; lib/harness/*_<family>.c and env_<layer>.c.
PLATFORM_SRC := lib/platform/verify.c lib/platform/caps.c $(wildcard lib/platform/$(FAMILY).c) \
		lib/platform/$(LAYER).c $(wildcard lib/platform/$(LAYER)_*.c)
# Linux answers every observation call itself; the other layers start with none of them (ENOTSUP).
ifneq ($(LAYER),linux)
PLATFORM_SRC += lib/platform/none.c
endif
OS_SRC       := $(wildcard lib/os/*_$(FAMILY).c) $(wildcard lib/os/*_$(LAYER).c)
COMMON_SRC   := $(filter-out lib/harness/conform% lib/harness/bench% lib/harness/counters% lib/harness/topology% \
		lib/harness/env_%,$(wildcard lib/harness/*.c)) $(wildcard lib/harness/env_$(FAMILY).c) \
		$(wildcard lib/harness/env_$(LAYER).c) $(OS_SRC)
CONFORM_LIB  := $(filter-out lib/harness/conform_posix.c lib/harness/conform_win32.c,$(wildcard lib/harness/conform*.c)) \
		$(wildcard lib/harness/conform_$(FAMILY).c)
# Counter and topology back-ends: one file each, built where config.mk found the feature;
# the benchmark clock and the filter's regular expressions per family.
COUNTERS_SRC := lib/harness/counters.c $(if $(filter win32,$(FAMILY)),lib/harness/counters_win32.c,lib/harness/counters_rusage.c)
ifeq ($(PERF_EVENT),1)
COUNTERS_SRC += lib/harness/counters_perf_event.c
ifeq ($(LIBPFM),1)
COUNTERS_SRC += lib/harness/counters_pfm.c
endif
endif
TOPOLOGY_SRC := lib/harness/topology.c $(if $(filter win32,$(FAMILY)),lib/harness/topology_win32.c,lib/harness/topology_none.c)
ifeq ($(AFFINITY),1)
TOPOLOGY_SRC += lib/harness/topology_affinity.c
endif
ifeq ($(HWLOC),1)
TOPOLOGY_SRC += lib/harness/topology_hwloc.c
endif
BENCH_LIB    := $(filter-out lib/harness/bench_%_posix.c lib/harness/bench_%_win32.c,$(wildcard lib/harness/bench*.c)) \
		$(wildcard lib/harness/bench_*_$(FAMILY).c) $(COUNTERS_SRC) $(TOPOLOGY_SRC)
REFALLOC_SRC := $(filter-out lib/refalloc/shim.c,$(wildcard lib/refalloc/*.c))
# Suites: the files at the top go through check.h/bench.h and the page layer on every system;
# posix/ and win32/ hold the areas of one family's own interface (mmap, madvise ...; VirtualAlloc ...).
CONFORM_SRC  := $(wildcard suites/conformance/*.c suites/conformance/$(FAMILY)/*.c)
PERF_SRC     := $(wildcard suites/perf/*.c suites/perf/$(FAMILY)/*.c)
CTEST_SRC    := $(wildcard tests/c/*.c)
SELFTEST_SRC := $(wildcard tests/selftest/*.c tests/selftest/$(FAMILY)/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
PLATFORM_OBJ := $(call obj,$(PLATFORM_SRC) $(COMMON_SRC))
REFALLOC_OBJ := $(call obj,$(REFALLOC_SRC))

BENCH_LIBS :=
ifeq ($(LIBPFM),1)
BENCH_LIBS += $(LIBPFM_LIBS)
endif
ifeq ($(HWLOC),1)
BENCH_LIBS += $(HWLOC_LIBS)
endif
BENCH_LINK := $(CC)
BENCH_EXTRA_OBJ :=
ifeq ($(GBENCH),1)
BENCH_EXTRA_OBJ := $(BUILD)/obj/lib/harness/gbench_shim.o
BENCH_LIBS += -lbenchmark
BENCH_LINK := $(CXX)
endif

BINARIES := $(BUILD)/pagelab-conform$(EXE) $(BUILD)/librefalloc.a
ifneq ($(BENCH_LIB),)
BINARIES += $(BUILD)/pagelab-bench$(EXE)
endif
# The malloc shim is an LD_PRELOAD library: ELF systems only (Darwin's dyld interposes otherwise).
ifeq ($(STATIC)$(FAMILY),0posix)
ifneq ($(LAYER),darwin)
ifneq ($(wildcard lib/refalloc/shim.c),)
BINARIES += $(BUILD)/librefalloc.so
endif
endif
endif
# The model-based fuzzer (lib/fuzz/) drives Linux's VM interface: built where the page layer is Linux's.
FUZZ_SRC := $(if $(filter linux,$(LAYER)),$(wildcard lib/fuzz/*.c),)
ifneq ($(FUZZ_SRC),)
BINARIES += $(BUILD)/pagelab-fuzz$(EXE)
endif
CTESTS := $(patsubst tests/c/%.c,$(BUILD)/tests/%$(EXE),$(CTEST_SRC))
# The benchmark harness self-test: tests/bench/*.c with the harness library (not its main).
BENCH_TEST_SRC := $(wildcard tests/bench/*.c)
BENCH_TEST_OBJ := $(call obj,$(filter-out lib/harness/bench_main.c,$(BENCH_LIB)) $(BENCH_TEST_SRC))
ifneq ($(BENCH_TEST_SRC),)
CTESTS += $(BUILD)/tests/bench-selftest$(EXE)
endif

.PHONY: all deps deps-check run check check-c check-quick check-lava bench reference patterninit clean help
all: $(BINARIES)

$(BUILD)/obj/%.o: %.c $(BUILD)/config.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC        $<"
	$(Q)$(CC) $(CPPFLAGS) $(OBJ_DEFS) $(CFLAGS) $(WERROR_FLAG) -MMD -MP -c $< -o $@

$(BUILD)/obj/pic/%.o: %.c $(BUILD)/config.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC (pic)  $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WERROR_FLAG) -fPIC -ftls-model=initial-exec -MMD -MP -c $< -o $@

$(BUILD)/obj/lib/harness/gbench_shim.o: lib/harness/gbench_shim.cc $(BUILD)/config.h include/pagelab/bench.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CXX       $<"
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libpagelab.a: $(PLATFORM_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/librefalloc.a: $(REFALLOC_OBJ) $(PLATFORM_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

# The shim is position-independent and carries its own copy of the page layer.
$(BUILD)/librefalloc.so: $(patsubst %.c,$(BUILD)/obj/pic/%.o,$(REFALLOC_SRC) lib/refalloc/shim.c $(PLATFORM_SRC) $(COMMON_SRC))
	@[ "$(V)" = 1 ] || echo "  LD        $@"
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,--version-script=lib/refalloc/shim.map -o $@ $^ -lpthread

# Suite objects are linked directly (not through an archive) so their constructors register.
$(BUILD)/pagelab-conform$(EXE): $(call obj,$(CONFORM_LIB) $(CONFORM_SRC)) $(BUILD)/librefalloc.a
	@[ "$(V)" = 1 ] || echo "  LD        $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$(CONFORM_LIB) $(CONFORM_SRC)) $(BUILD)/librefalloc.a $(LDLIBS)

$(BUILD)/pagelab-bench$(EXE): $(call obj,$(BENCH_LIB) $(PERF_SRC)) $(BENCH_EXTRA_OBJ) $(BUILD)/librefalloc.a
	@[ "$(V)" = 1 ] || echo "  LD        $@"
	$(Q)$(BENCH_LINK) $(LDFLAGS) -o $@ $(call obj,$(BENCH_LIB) $(PERF_SRC)) $(BENCH_EXTRA_OBJ) $(BUILD)/librefalloc.a $(BENCH_LIBS) $(LDLIBS)

$(BUILD)/pagelab-fuzz$(EXE): $(call obj,$(FUZZ_SRC))
	@[ "$(V)" = 1 ] || echo "  LD        $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$(FUZZ_SRC)) $(LDLIBS)

# The conformance runner with probes that misbehave on purpose (harness self-test).
$(BUILD)/pagelab-selftest$(EXE): $(call obj,$(CONFORM_LIB) $(SELFTEST_SRC)) $(BUILD)/librefalloc.a
	@[ "$(V)" = 1 ] || echo "  LD        $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$(CONFORM_LIB) $(SELFTEST_SRC)) $(BUILD)/librefalloc.a $(LDLIBS)

# PID 1 of the initramfs `pagelab kernels` boots (static, Linux only).
$(BUILD)/pagelab-init: tools/guest-init.c
	@[ "$(V)" = 1 ] || echo "  CC        $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -static -o $@ $<

$(BUILD)/tests/bench-selftest$(EXE): $(BENCH_TEST_OBJ) $(BUILD)/librefalloc.a
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD        $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(BENCH_TEST_OBJ) $(BUILD)/librefalloc.a $(filter-out -lbenchmark,$(BENCH_LIBS)) $(LDLIBS)

# Tools the harness tests use: a fake VM layer to preload, a launcher that does not follow children.
TEST_TOOLS := $(BUILD)/testtools/libfakevm.so $(BUILD)/testtools/nofollow
$(BUILD)/testtools/libfakevm.so: tests/tools/fakevm.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC        $<"
	$(Q)$(CC) $(CFLAGS) -fPIC -shared -o $@ $< -ldl
$(BUILD)/testtools/nofollow: tests/tools/nofollow.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC        $<"
	$(Q)$(CC) $(CFLAGS) -o $@ $<

# The environment record names the compiler and flags the suite was built with.
# (A variable of its own, not CPPFLAGS: target-specific values reach prerequisites such as config.h, and
# `private` needs GNU make 3.82 while macOS ships 3.81.)
$(BUILD)/obj/lib/harness/env.o: OBJ_DEFS = -DPL_BUILD_CFLAGS='"$(CC) $(CFLAGS)"'

# C self-tests: each tests/c/NAME.c is one program; tests/c/NAME.mk (optional) adds objects.
$(BUILD)/tests/%$(EXE): tests/c/%.c $(BUILD)/librefalloc.a $(BUILD)/config.h
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC        $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/librefalloc.a $(LDLIBS)

# ---- jobs ----
deps:
	@sh tools/install-deps.sh run

deps-check:
	@sh tools/install-deps.sh check

run: deps all
	$(PYTHON) runners/pagelab run --build $(BUILD)

check: deps-check all $(CTESTS) $(BUILD)/pagelab-selftest$(EXE) $(TEST_TOOLS)
	@$(ZIG) version >/dev/null 2>&1 || echo "check: the FreeBSD and macOS builds are skipped: no Zig toolchain ($(ZIG)); pip install ziglang"
	@sh tools/check.sh "$(BUILD)" "$(PYTHON)"

check-c: all $(CTESTS)
	@sh tools/check.sh "$(BUILD)" "$(PYTHON)" c

# The edit-test loop: C tests, the harness self-tests and the host tests on fixtures; installs nothing.
check-quick: all $(CTESTS) $(BUILD)/pagelab-selftest$(EXE) $(TEST_TOOLS)
	@sh tools/check.sh "$(BUILD)" "$(PYTHON)" quick

# LAVA alone: job validation, a standalone lava-run, and a run through a LAVA instance brought up here.
check-lava: deps-check all
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/py/test_lava.py

bench: all
	$(BUILD)/pagelab-bench --profile=quick

# The reference runs: every kind of target that runs here (conformance only), kept out of the tree;
# the tree keeps their summary and findings (results/reference/).
REFERENCE_TARGETS := local musl qemu-user:aarch64 qemu-user:s390x qemu-user:i686 qemu-user:ppc64el \
	qemu-user:riscv64 qemu-user:armhf uml kernel:6.1 kernel:6.12 kernel:6.1/arm64 kernel:6.12/arm64-16k \
	kernel:6.1/ppc64el kernel:6.1/s390x kernel:6.12/riscv64 wine
reference: deps-check all
	rm -rf results/reference-runs
	$(PYTHON) runners/pagelab --results results/reference-runs run --no-perf --build $(BUILD) \
		$(foreach t,$(REFERENCE_TARGETS),--target $(t)) \
		--target 'wrap:valgrind --tool=none --trace-children=yes -q'
	$(PYTHON) tools/reference_summary.py results/reference $$(ls -d results/reference-runs/2*)

# Pattern initialisation on pdftoppm: glibc vs refalloc none/memset/refpage vs jemalloc/mimalloc.
patterninit: all
	$(PYTHON) tools/patterninit.py --lib $(BUILD)/librefalloc.so $(PATTERNINIT_ARGS)

clean:
	rm -rf $(BUILD)

help:
	@sed -n '2,12p' Makefile

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
