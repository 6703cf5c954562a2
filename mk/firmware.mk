# Bare-metal guest tests (kvm-unit-tests style): static ELF64 programs that
# minivmm boots with --kernel, each checking one device from the guest side.
#
#   make firmware          build/firmware/*.elf
#   make check-firmware    run them (firmware/tests/unittests.cfg) on KVM,
#                          or nested under QEMU TCG where /dev/kvm is missing
#
# Own flags, not CFLAGS: freestanding, no sanitizers, linked at 1 MiB with
# Debian's libfdt.a (built PIC with a stack protector: lib/libc.c provides
# __stack_chk_fail; -fno-pie -no-pie make the linker resolve its GOT
# references statically).

FW_DIR      := $(BUILD)/firmware
FW_OBJDIR   := $(FW_DIR)/tests
FW_LIBFDT   ?= /usr/lib/x86_64-linux-gnu/libfdt.a
FW_CFLAGS   := -std=gnu11 -ffreestanding -fno-pic -fno-pie -mno-red-zone \
               -fno-stack-protector -fno-asynchronous-unwind-tables \
               -fno-tree-loop-distribute-patterns -U_FORTIFY_SOURCE \
               -O2 -g -Wall -Wextra -Werror -I. -MMD -MP
FW_LDFLAGS  := -nostdlib -static -no-pie -Wl,--build-id=none \
               -T firmware/tests/lib/firmware.ld

FW_LIB_SRCS := firmware/tests/lib/entry.S firmware/tests/lib/isr.S \
               firmware/tests/lib/libc.c firmware/tests/lib/console.c \
               firmware/tests/lib/report.c firmware/tests/lib/irq.c \
               firmware/tests/lib/timer.c firmware/tests/lib/pci.c \
               firmware/tests/lib/dt.c firmware/tests/lib/ahci.c \
               firmware/tests/lib/virtio-blk.c
FW_LIB_OBJS := $(patsubst firmware/tests/%,$(FW_OBJDIR)/%.o,$(basename $(FW_LIB_SRCS)))
FW_TESTS    := pci ahci virtio-blk msi iotest
FW_ELFS     := $(FW_TESTS:%=$(FW_DIR)/%.elf)

.PHONY: firmware check-firmware
# Keep the objects: they are intermediates of a chain of pattern rules.
.SECONDARY: $(FW_LIB_OBJS) $(FW_TESTS:%=$(FW_OBJDIR)/%.o)

firmware: $(FW_ELFS)

$(FW_OBJDIR)/%.o: firmware/tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(FW_CFLAGS) -c -o $@ $<

$(FW_OBJDIR)/%.o: firmware/tests/%.S
	@mkdir -p $(dir $@)
	$(CC) $(FW_CFLAGS) -c -o $@ $<

$(FW_DIR)/%.elf: $(FW_OBJDIR)/%.o $(FW_LIB_OBJS) firmware/tests/lib/firmware.ld
	$(CC) $(FW_CFLAGS) $(FW_LDFLAGS) -o $@ $(FW_LIB_OBJS) $< $(FW_LIBFDT) -lgcc

# Both minivmm builds: the runner picks KVM directly or the nested rig.
check-firmware: firmware minivmm $(BUILD)/minivmm-static $(BUILD)/guest/iotest
	MINIVMM=$(BUILD)/minivmm MINIVMM_STATIC=$(BUILD)/minivmm-static \
	    IOTEST=$(BUILD)/guest/iotest FW_DIR=$(FW_DIR) \
	    scripts/run-firmware-tests.sh
