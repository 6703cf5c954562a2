# The Linux guest: iotest (a static binary, also usable on the host to make
# disk images) and the initramfs that runs it.
#
#   make guest                        build/guest/iotest + initramfs.cpio
#   make guest GUEST_INITRAMFS=PATH   put the initramfs elsewhere
#   make guest-qemu                   boot it on QEMU (TCG) as a reference
#
# Own flags, not CFLAGS: the guest binary is static, and a SANITIZE=1
# build's -fsanitize flags do not link statically.

GUEST_DIR       := $(BUILD)/guest
GUEST_IOTEST    := $(GUEST_DIR)/iotest
GUEST_INITRAMFS ?= $(GUEST_DIR)/initramfs.cpio
GUEST_CFLAGS    := -std=gnu11 -static -O2 -Wall -Wextra -Werror \
                   -D_GNU_SOURCE -I.

.PHONY: guest guest-qemu

guest: $(GUEST_IOTEST) $(GUEST_INITRAMFS)

$(GUEST_IOTEST): guest/iotest.c guest/pattern.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -o $@ $< -luring

# The script also fetches the kernel (once, into .cache/) for its modules.
$(GUEST_INITRAMFS): scripts/guest-initramfs.sh guest/init $(GUEST_IOTEST)
	IOTEST=$(GUEST_IOTEST) scripts/guest-initramfs.sh $@

guest-qemu: guest
	INITRAMFS=$(GUEST_INITRAMFS) IOTEST=$(GUEST_IOTEST) \
	    scripts/guest-qemu.sh
