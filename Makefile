# minivmm: a small KVM virtual machine monitor built around block I/O.
#
#   make deps               install build and test dependencies (Debian)
#   make                    build ./minivmm
#   make check              build and run the unit tests
#   make check SANITIZE=1   the same under AddressSanitizer + UBSan
#   make check TSAN=1       the unit tests under ThreadSanitizer (check-tsan)
#   make check-acpi         the ACPI tables through iasl -d (part of check)
#   make bench              run the benchmarks
#   make format             reformat the sources; make format-check verifies
#   make fuzz, fuzz-smoke   libFuzzer targets, and a short run of each
#                           (mk/fuzz.mk)

CC       ?= gcc
SANITIZE ?= 0
TSAN     ?= 0

ifeq ($(SANITIZE)$(TSAN),11)
$(error SANITIZE=1 and TSAN=1 do not mix: ASan and TSan exclude each other)
endif

ifeq ($(SANITIZE),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
else ifeq ($(TSAN),1)
# ThreadSanitizer sees every access the program makes, but not the kernel's
# through io_uring's shared rings: see tests/tsan.supp. gcc also warns that
# TSan does not model a standalone __atomic_thread_fence() (the store-fence-
# load pairs around virtqueue notification suppression): those orderings
# go unchecked, they are not errors, so the warning is off.
BUILD    ?= build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer \
            $(shell $(CC) -Werror -Wno-tsan -fsyntax-only -x c /dev/null \
                2>/dev/null && echo -Wno-tsan)
else
BUILD    ?= build
SANFLAGS :=
endif

CFLAGS   := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
            -I. $(SANFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS  := $(SANFLAGS)
LDLIBS   := -luring -lfdt -lseccomp -lpthread -lm

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

# ---- Sources, layer by layer (README.md, "Where things are") ---------------
UTIL_SRCS := util/log.c util/base64.c util/trace.c util/trace-json.c \
             util/sandbox.c
AIO_SRCS  := aio/async.c aio/timer.c aio/aio-posix.c aio/fdmon-io_uring.c \
             aio/fdmon-poll.c aio/main-loop.c aio/iothread.c \
             aio/uring-flags.c
BLOCK_SRCS := block/block.c block/open.c block/bounce.c block/iov.c \
              block/raw-uring.c block/raw-threads.c block/null.c \
              block/stats.c block/inject.c block/logwrites.c
DEV_SRCS  := devices/memory.c devices/address-space.c devices/pci.c \
             devices/pci-msix.c \
             devices/serial.c devices/fw-cfg.c devices/exit-ports.c \
             devices/rtc.c devices/acpi-pm.c \
             devices/ahci.c devices/ahci-regs.c devices/ahci-cmd.c \
             devices/ahci-fis.c devices/ata-identify.c \
             devices/virtqueue.c devices/virtio-pci.c \
             devices/virtio-pci-regs.c devices/virtio-blk.c
VMM_SRCS  := vmm/qtest.c vmm/options.c vmm/board.c vmm/console.c vmm/kvm.c \
             vmm/kvm-vcpu.c vmm/machine-boot.c vmm/cpuid.c vmm/kvm-probe.c \
             vmm/msi-routes.c
MAIN_SRCS := vmm/main.c

FW_SRCS   := firmware/boot.c firmware/linux.c firmware/elf.c \
             firmware/mptable.c firmware/pci-assign.c firmware/fdt.c \
             firmware/acpi.c firmware/aml.c

LIB_SRCS  := $(UTIL_SRCS) $(AIO_SRCS) $(BLOCK_SRCS) $(DEV_SRCS) $(VMM_SRCS) \
             $(FW_SRCS)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libminivmm.a

QOS_SRCS  := tests/qos/qos.c tests/qos/qos-local.c tests/qos/pci.c \
             tests/qos/ahci.c tests/qos/virtio.c tests/qos/virtio-blk.c
UNIT_SRCS := tests/unit/main.c tests/unit/loop-thread.c \
             tests/unit/test-aio.c tests/unit/test-pci.c \
             tests/unit/test-block.c \
             tests/unit/test-ahci.c tests/unit/test-ahci-bad.c \
             tests/unit/ahci-machine.c \
             tests/unit/test-virtio-blk.c tests/unit/test-virtio-blk-hostile.c \
             tests/unit/vblk-machine.c tests/unit/test-uring-flags.c \
             tests/unit/test-boot.c tests/unit/test-fdt.c \
             tests/unit/test-cpuid.c tests/unit/test-acpi.c \
             tests/unit/test-trace.c tests/unit/test-exit.c \
             tests/unit/test-msi-routes.c tests/unit/test-stress.c \
             tests/unit/test-crash.c tests/unit/test-sandbox.c \
             tests/unit/test-ahci-pio.c \
             tests/unit/test-vq-mapping.c \
             tests/unit/test-aio-uring.c \
             $(QOS_SRCS)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
UNIT_BIN  := $(BUILD)/tests/unit-tests

QTEST_SRCS := tests/qtest/main.c tests/qtest/libqtest.c \
              tests/qtest/test-protocol.c tests/qtest/test-cli.c \
              tests/qtest/test-console.c tests/qtest/test-devices.c \
              tests/qtest/test-trace.c tests/qtest/test-sandbox.c \
              tests/qtest/qemu-diff.c tests/qtest/test-diff-ahci.c \
              tests/qtest/test-diff-virtio.c \
              tests/qos/qos.c tests/qos/pci.c tests/qos/ahci.c \
              tests/qos/virtio.c tests/qos/virtio-blk.c
QTEST_BIN  := $(BUILD)/tests/qtest-tests

BENCH_AIO := $(BUILD)/tests/bench-aio
BENCH_BLOCK := $(BUILD)/tests/bench-block
BENCH_URING := $(BUILD)/tests/bench-uring

ALL_C     := $(shell find util aio block devices vmm firmware tests \
                 -name '*.[ch]' 2>/dev/null | sort)

.PHONY: all deps check check-all check-tsan check-uring-flags check-acpi check-qemu bench bench-aio bench-block bench-repro \
        bench-uring bench-uring-syscalls \
        format format-check clean

all: minivmm

minivmm: $(BUILD)/minivmm
	ln -sf $(BUILD)/minivmm $@

$(BUILD)/minivmm: $(MAIN_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A static build for the nested harness: L1's initramfs has no libraries.
$(BUILD)/minivmm-static: $(MAIN_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) -static -o $@ $^ $(LDLIBS)

$(LIB): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# ---- Tests ------------------------------------------------------------------
$(UNIT_BIN): $(UNIT_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(QTEST_BIN): $(QTEST_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# Check forks each test; sanitizer builds run slower, so allow more time.
CK_ENV := CK_TIMEOUT_MULTIPLIER=$(if $(filter 1,$(SANITIZE)),4,1)

ifeq ($(TSAN),1)
# Under TSan `make check` is check-tsan: the unit tests only (the qtest
# tests run minivmm as a child and mostly exercise the socket protocol).
check: check-tsan
else
check: check-all
endif

# ThreadSanitizer: every unit suite, the stress suite longer. halt_on_error
# makes the first report fail its test (Check sees the exit code);
# second_deadlock_stack gives both stacks of a lock-order report.
TSAN_ENV := CK_TIMEOUT_MULTIPLIER=10 MINIVMM_STRESS_SECONDS=10 \
            TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 \
            suppressions=$(CURDIR)/tests/tsan.supp"
TSAN_UNIT_BIN := build-tsan/tests/unit-tests
check-tsan:
	$(MAKE) --no-print-directory TSAN=1 $(TSAN_UNIT_BIN)
	$(TSAN_ENV) $(TSAN_UNIT_BIN)

check-all: $(UNIT_BIN) $(QTEST_BIN) $(BUILD)/minivmm
	$(CK_ENV) $(UNIT_BIN)
	tests/scripts/trace-report-test.sh
	tests/scripts/trace-plot-test.sh
	$(CK_ENV) MINIVMM=$(BUILD)/minivmm $(QTEST_BIN)
	$(MAKE) --no-print-directory check-uring-flags
	$(MAKE) --no-print-directory check-acpi

# The aio, aio-uring and block suites again under each io_uring flag set,
# added to every context they create (a set the kernel refuses is dropped,
# and says so). "defer" includes single-issuer.
URING_FLAG_SETS := single-issuer coop single-issuer,coop defer defer,coop
check-uring-flags: $(UNIT_BIN)
	@for f in $(URING_FLAG_SETS); do for s in aio aio-uring block; do \
	    echo "check-uring-flags: $$s suite, flags $$f"; \
	    $(CK_ENV) MINIVMM_TEST_URING_FLAGS=$$f CK_RUN_SUITE=$$s \
	        $(UNIT_BIN) || exit 1; \
	done; done

# The ACPI tables through iasl -d, ACPICA's disassembler, for 1 and 4 vCPUs
# (skipped, and says so, where acpica-tools is not installed).
check-acpi: $(BUILD)/minivmm
	scripts/check-acpi.sh $(BUILD)/minivmm

# The same qtest-driven tests against QEMU (Debian's qemu-system-x86), and
# the differential tests, which run QEMU and minivmm side by side.
check-qemu: $(QTEST_BIN) $(BUILD)/minivmm
	$(CK_ENV) QTEST_TARGET=qemu MINIVMM=$(BUILD)/minivmm $(QTEST_BIN)
	scripts/qemu-differences.sh --check

# ---- Benchmarks -----------------------------------------------------------
BENCH_COMMON := tests/bench/trace-cost.c

$(BENCH_AIO): $(BUILD)/tests/bench/bench-aio.o \
              $(BENCH_COMMON:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BENCH_BLOCK): $(BUILD)/tests/bench/bench-block.o \
                $(BENCH_COMMON:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# bench-aio and bench-block once more, with the trace points compiled out
# (-DMINIVMM_TRACE_NONE, util/trace.h): the baseline their trace-off-cost
# lines compare the normal build with (docs/tracing.md).
NOTRACE := $(BUILD)/notrace

$(NOTRACE)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DMINIVMM_TRACE_NONE -c -o $@ $<

$(NOTRACE)/libminivmm.a: $(LIB_SRCS:%.c=$(NOTRACE)/%.o)
	rm -f $@
	ar rcs $@ $^

$(NOTRACE)/tests/bench-%: $(NOTRACE)/tests/bench/bench-%.o \
                          $(BENCH_COMMON:%.c=$(NOTRACE)/%.o) \
                          $(NOTRACE)/libminivmm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

URING_SRCS := tests/bench/bench-uring.c tests/bench/bench-uring-stats.c \
              tests/bench/bench-uring-syscalls.c \
              tests/qos/qos.c tests/qos/qos-local.c \
              tests/qos/pci.c tests/qos/virtio.c tests/qos/virtio-blk.c

$(BENCH_URING): $(URING_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

REPRO_SRCS := tests/bench/bench-repro.c tests/bench/iotest.c \
              tests/qtest/libqtest.c tests/qos/qos.c tests/qos/pci.c \
              tests/qos/ahci.c tests/qos/virtio.c tests/qos/virtio-blk.c
BENCH_REPRO := $(BUILD)/tests/bench-repro

$(BENCH_REPRO): $(REPRO_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: bench-aio bench-block bench-repro bench-uring

# Last, the trace points' cost, off and on (docs/tracing.md).
bench-aio: $(BENCH_AIO) $(NOTRACE)/tests/bench-aio
	$(BENCH_AIO) --trace-none $(NOTRACE)/tests/bench-aio

# 4 KiB random reads vs fio; keeps a 1 GiB image in /var/tmp between runs.
# Last, the trace points' cost, off and on (docs/tracing.md).
bench-block: $(BENCH_BLOCK) $(NOTRACE)/tests/bench-block
	$(BENCH_BLOCK) --trace-none $(NOTRACE)/tests/bench-block

# iotest through qtest: the stall, the fix, virtio-blk, and QEMU beside them.
bench-repro: $(BENCH_REPRO) $(BUILD)/minivmm
	MINIVMM=$(BUILD)/minivmm $(BENCH_REPRO)

# io_uring setup flags x polling policies, virtio-blk on one IOThread.
bench-uring: $(BENCH_URING)
	$(BENCH_URING)

# System calls per I/O before and after each event loop switch.
bench-uring-syscalls: $(BENCH_URING)
	BENCH_URING_MODE=syscalls $(BENCH_URING)

# Parts with their own rules: firmware tests, the guest, the nested harness.
-include $(sort $(wildcard mk/*.mk))

# ---- Dependencies (Debian) -------------------------------------------------
DEPS_PKGS := build-essential pkg-config liburing-dev libfdt-dev check \
             libseccomp-dev linux-libc-dev clang-format fio qemu-system-x86 \
             busybox-static cpio kmod acpica-tools gnuplot-nox \
             clang libclang-rt-14-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

deps:
	@missing=""; \
	for p in $(DEPS_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	        grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "make deps: installing$$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	        --no-install-recommends $$missing >/dev/null; \
	fi

# ---- Formatting -------------------------------------------------------------
format:
	clang-format -i $(ALL_C)

format-check:
	clang-format --dry-run --Werror $(ALL_C)

clean:
	rm -rf build build-san build-tsan minivmm

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
