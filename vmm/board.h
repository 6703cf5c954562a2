/*
 * The board: the machine's devices, created in one visible order from a
 * MachineConfig. Nothing here knows the accelerator: interrupts go through
 * the MachineIrqOps it provides (KVM's irqchip, or qtest's socket).
 *
 *   RAM at 0 ................................ --memory
 *   PCI host bridge (0xCF8/0xCFC) ........... 00:00.0
 *     and its ECAM window (--acpi on) ....... 0xE0000000, buses 0-255
 *   virtio-blk disks ........................ 00:02.0, 00:03.0, ... in order
 *   ICH9 LPC bridge (no functions) ......... 00:1f.0
 *   AHCI (ICH9), SATA disks on ports 0..5 ... 00:1f.2
 *   8250 UART COM1 (0x3F8, IRQ 4)
 *   fw_cfg (0x510/0x511)
 *   CMOS clock (0x70/0x71)
 *   test exit port (0xF4), i8042 reset (0x64)
 *   ACPI sleep control/status, reset (0x600-0x602, --acpi on)
 */
#ifndef MINIVMM_VMM_BOARD_H
#define MINIVMM_VMM_BOARD_H

#include <stdatomic.h>
#include <stdio.h>

#include "aio/iothread.h"
#include "block/block.h"
#include "devices/acpi-pm.h"
#include "devices/address-space.h"
#include "devices/exit-ports.h"
#include "devices/fw-cfg.h"
#include "devices/memory.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "vmm/config.h"
#include "vmm/console.h"

struct VirtioPciDevice;

/* What the accelerator provides: interrupt delivery, and for KVM the hook
 * that turns virtio notify registers into ioeventfds (NULL: none). */
typedef struct MachineIrqOps {
    void (*set_level)(void *opaque, int gsi, int level);
    void (*send_msi)(void *opaque, uint64_t addr, uint32_t data);
    void (*virtio_notify)(void *opaque, struct VirtioPciDevice *d);
    void *opaque;
} MachineIrqOps;

typedef struct Machine {
    const MachineConfig *cfg;
    GuestMemory ram;
    AddressSpace as;
    PciHost pci;
    PciDevice lpc; /* 00:1f.0: makes slot 0x1f multi-function */
    Serial serial;
    FwCfg fw_cfg;
    ExitPorts exit_ports;
    Rtc rtc;
    AcpiPm acpi_pm;         /* --acpi on */
    atomic_int exit_status; /* -1 while running; set once by the guest */
    MsiSink msi;
    MachineIrqOps irq;
    IOThread *iothreads[MAX_IOTHREADS];
    BlockBackend *blk[MAX_DISKS];
    struct AhciState *ahci;
    struct VirtioBlk *virtio[MAX_DISKS];
    int nvirtio;
    int serial_file_fd; /* --serial file:PATH, else -1 */
    Console console;    /* --serial stdio on a tty: raw mode, Ctrl-A */
    bool stdin_watched; /* --serial stdio: guest input from stdin */
    bool stdin_done;    /* end of input or an error: stop watching */
    int64_t created_ns; /* clock_ns() when built, for --stats' wall time */
} Machine;

/* The PCI INTA# of a slot, swizzled over GSIs 16..19 as the MP table says. */
static inline int board_pci_gsi(int slot)
{
    return 16 + slot % 4;
}

/*
 * Build the machine. Call with the big lock held, main loop initialised.
 * Returns 0 or -errno with one line of explanation in @err.
 */
int machine_create(Machine *m, const MachineConfig *cfg,
                   const MachineIrqOps *irq, char *err, size_t errlen);

/*
 * The guest is done (test exit port, reboot, shutdown, a fatal vCPU
 * error): remember the first status and stop the main loop. Any thread.
 */
void machine_request_exit(void *opaque, int status);

/*
 * The end of a run goes in four steps (machine_finish() in vmm/main.c):
 *
 *   1. the caller stops what starts requests from outside: the vCPU
 *      threads (KVM) or the qtest server;
 *   2. machine_quiesce(): the devices stop taking requests (virtio queues
 *      stop watching their kicks, AHCI ports start no command), then every
 *      disk is drained;
 *   3. machine_flush(): each writable image is made durable (fdatasync),
 *      now that every write the guest was told about has completed;
 *   4. machine_destroy().
 *
 * A flush covers only the writes completed before it was issued, so a
 * flush before the drain could miss a write still in flight.
 */

/* Step 2: quiesce the devices, then drain every disk. Big lock held. */
void machine_quiesce(Machine *m);

/*
 * Step 3: flush each writable disk. Returns 0, or the -errno of a failed
 * flush (after one line on stderr naming the image). Big lock held.
 */
int machine_flush(Machine *m);

/*
 * Tear the machine down: the devices drain their requests and go, the disks
 * close, the IOThreads stop. Nothing is flushed here. At the end of a run it
 * finds every device quiesced and every disk drained and flushed; on a
 * failed setup it is all there is.
 */
void machine_destroy(Machine *m);

void machine_print_stats(Machine *m, FILE *out);

#endif
