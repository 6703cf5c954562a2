/*
 * AHCI: an Intel ICH9 SATA controller (8086:2922, class 01 06 01) in AHCI
 * mode, with six ports and one ATA disk on any of them.
 *
 * The guest-facing side is the ABAR (BAR5) register window plus MSI/INTx;
 * the disk side is the block layer. A guest write to a port's PxCI starts
 * the issued commands right there, on the thread doing the MMIO (a vCPU
 * thread holding the big lock), so their block requests go to the main
 * context: the path that stalls when nothing wakes the main loop (see
 * docs/event-loop.md). Completions come back on the main loop thread.
 *
 * Everything here runs with the big lock held.
 */
#ifndef MINIVMM_DEVICES_AHCI_H
#define MINIVMM_DEVICES_AHCI_H

#include <stdint.h>

#include "block/block.h"
#include "devices/irq.h"
#include "devices/memory.h"
#include "devices/pci.h"

#define AHCI_NUM_PORTS 6

typedef struct AhciState AhciState;

/* IDENTIFY strings; NULL picks the default shown. */
typedef struct AhciDiskOptions {
    const char *serial; /* "MVMM000<port>", at most 20 characters */
    const char *model;  /* "minivmm SATA disk", at most 40 */
    const char *fwrev;  /* "0.1", at most 8 */
} AhciDiskOptions;

/*
 * Create a controller and plug it into @host at @devfn (00:1f.2 on the
 * board). DMA goes to @ram; interrupts to @msi when the guest enables MSI,
 * to @intx otherwise. Returns 0, -ENOMEM, or -EBUSY if @devfn is taken.
 */
int ahci_create(AhciState **out, PciHost *host, uint8_t devfn, GuestMemory *ram,
                const MsiSink *msi, IrqLine intx);

/*
 * Put a disk on @port. The backend stays the caller's: close it only after
 * ahci_destroy(). Returns 0, -EINVAL (bad port, a string too long or not
 * printable ASCII), or -EBUSY (the port has a disk).
 */
int ahci_attach_disk(AhciState *s, int port, BlockBackend *blk,
                     const AhciDiskOptions *opts);

/*
 * Power-on reset: drain in-flight I/O, then every register as after
 * ahci_create(), command list and FIS addresses included.
 */
void ahci_reset(AhciState *s);

/*
 * For the end of a run, once no vCPU runs: drain every port's in-flight
 * I/O. Commands in flight complete into orphaned slots (their result is not
 * reported to the guest, their data is written), and no new command starts
 * meanwhile; with no vCPU to write PxCI, none starts afterwards either.
 */
void ahci_quiesce(AhciState *s);

/*
 * Drain in-flight I/O, unmap the ABAR and unplug. Call before the PciHost
 * goes away (or after pci_host_cleanup()). NULL is fine.
 */
void ahci_destroy(AhciState *s);

#endif
