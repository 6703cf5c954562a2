# The nested harness and the Linux guest runs on minivmm.
#
#   make check-nested-smoke   prove KVM works inside the nested rig (L1)
#   make demo                 the 500 ms stall in a Linux guest: notify-on-SQE
#                             off, then on (MIB=N to change the size); prints
#                             a table, the trace: and repro-guest: lines, and
#                             writes build/demo/trace-off.json, trace-on.json
#                             and stall.png (scripts/demo.sh's header)
#   make check-linux          boot test: Linux on minivmm, both disks, iotest,
#                             1 and 2 vCPUs' clocks and kernel log, poweroff
#                             flushes a marker, 4-vCPU topology
#   make boot-stats           20 guest boots in a row (N=...): how many had
#                             lapic-deadline, hres, a clean kernel log
#   make bench-boot           boot-to-init, minivmm vs QEMU -accel kvm, same L1
#   make bench-guest          the same boots with iotest's 128 MiB per disk
#                             (MIB=...): in-guest AHCI and virtio-blk (on an
#                             IOThread) times, minivmm vs QEMU, PAIRS=5
#   make powercut             kill L1 under the guest's fsynced writes (two
#                             SATA, two virtio, raw and ext4) and check the
#                             images: N=20 runs per mode, MODES=writeback,none
#
# With /dev/kvm the guest runs on it directly; without, scripts/nested.sh
# boots a KVM-capable L1 under QEMU TCG and runs the static minivmm there
# (../shared/DESIGN.md, "Testing without hardware KVM").

KVM_SMOKE := $(BUILD)/tests/nested/kvm-smoke

.PHONY: check-nested-smoke demo check-linux boot-stats bench-boot bench-guest powercut

# Static: L1's initramfs has no libraries. Sanitizers cannot link static.
$(KVM_SMOKE): tests/nested/kvm-smoke.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(SANFLAGS),$(CFLAGS)) -static -o $@ $<

check-nested-smoke: $(KVM_SMOKE)
	scripts/nested.sh --timeout 300 --file $(KVM_SMOKE) -- kvm-smoke

# Both builds: the scripts pick the direct or the nested one at run time.
demo: minivmm $(BUILD)/minivmm-static guest
	scripts/demo.sh

check-linux: minivmm $(BUILD)/minivmm-static guest
	scripts/linux-boot-test.sh

boot-stats: minivmm $(BUILD)/minivmm-static guest
	scripts/boot-stats.sh $(or $(N),20)

bench-boot: minivmm $(BUILD)/minivmm-static guest
	scripts/boot-time.sh $(or $(PAIRS),3)

bench-guest: minivmm $(BUILD)/minivmm-static guest
	MIB=$(or $(MIB),128) scripts/boot-time.sh $(or $(PAIRS),5)

# Not in check or CI: one nested boot per run, 40 by default.
powercut: $(BUILD)/minivmm-static guest
	N=$(or $(N),20) MODES=$(or $(MODES),writeback,none) scripts/powercut.sh
