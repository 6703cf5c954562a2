/*
 * The machine the device fuzzers drive: guest RAM, an address space, a PCI
 * host and the main loop, all on the fuzzer's thread. That thread holds the
 * big lock throughout and plays both the vCPU (register accesses) and the
 * main loop (completions), so one input always takes the same path: nothing
 * runs unless the script says so.
 *
 * The script language is shared by fuzz-ahci.c and fuzz-virtio-blk.c. Each
 * step is an opcode byte followed by its operands (tests/fuzz/fuzz-input.h):
 *
 *   op & 7   0, 6, 7  MMIO write: offset u16 into the device's window, then
 *                     a value of the access size
 *            1        MMIO read: offset u16
 *            2        RAM write: gpa u32 (modulo the RAM size), len u16,
 *                     then len bytes copied into guest RAM
 *            3        run the main loop until nothing is left to do
 *            4        PCI config write: offset u8, then the value
 *            5        PCI config read: offset u8
 *   op >> 3 & 3       the access size: 1, 2, 4 or 8 bytes (config: at most 4)
 *   op & 0x80         run the main loop after this step
 *
 * The main loop runs once more at the end of the script, and tearing the
 * device down drains whatever is still in flight.
 */
#ifndef MINIVMM_TESTS_FUZZ_FUZZ_MACHINE_H
#define MINIVMM_TESTS_FUZZ_FUZZ_MACHINE_H

#include <stdint.h>

#include "devices/address-space.h"
#include "devices/memory.h"
#include "devices/pci.h"
#include "tests/fuzz/fuzz-input.h"

enum {
    FUZZ_OP_MMIO_WRITE = 0,
    FUZZ_OP_MMIO_READ = 1,
    FUZZ_OP_RAM_WRITE = 2,
    FUZZ_OP_RUN = 3,
    FUZZ_OP_CONFIG_WRITE = 4,
    FUZZ_OP_CONFIG_READ = 5,
};
#define FUZZ_OP_SIZE(size_log2) ((size_log2) << 3)
#define FUZZ_OP_THEN_RUN        0x80

/* Where the harness places the device's memory BARs before each run. */
#define FUZZ_MMIO_BASE 0xe0000000ull

typedef struct FuzzMachine {
    GuestMemory ram;
    AddressSpace as;
    PciHost host;
} FuzzMachine;

/* Create the main loop and the machine; exits the process on failure. */
void fuzz_machine_init(FuzzMachine *m, uint64_t ram_size);

/* Zero guest RAM: each input starts from the same machine. */
void fuzz_machine_reset_ram(FuzzMachine *m);

/* Configuration space of @devfn through ports 0xCF8/0xCFC, as a guest. */
void fuzz_config_write(FuzzMachine *m, uint8_t devfn, unsigned offset,
                       unsigned size, uint32_t value);
uint32_t fuzz_config_read(FuzzMachine *m, uint8_t devfn, unsigned offset,
                          unsigned size);

/* Dispatch completions, BHs and queue kicks until the main loop is idle. */
void fuzz_run_main_loop(void);

/*
 * Where the devices' interrupts go: nowhere. The fuzzed guest never waits
 * for one; what matters is that raising them is safe.
 */
extern const MsiSink fuzz_msi_sink;
void fuzz_ignore_level(void *opaque, int gsi, int level);

/* Run the script in @in against the function at @devfn (see above). */
void fuzz_run_script(FuzzMachine *m, FuzzInput *in, uint8_t devfn);

#endif
