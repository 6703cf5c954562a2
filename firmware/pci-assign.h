/*
 * What a PC BIOS does to PCI before it boots an OS, done by the VMM: size
 * every BAR of every function on bus 0, place it in the I/O or MMIO window,
 * turn decoding and bus mastering on, and route each INTx pin to an IOAPIC
 * input (INTERRUPT_LINE and the MP table's PCI entries).
 *
 * Everything goes through pci_config_read()/pci_config_write(), the path a
 * guest's own configuration cycles take, so the devices map their BARs in the
 * address space exactly as if the guest had programmed them. Call with the
 * big lock held, before any vCPU runs.
 */
#ifndef MINIVMM_FIRMWARE_PCI_ASSIGN_H
#define MINIVMM_FIRMWARE_PCI_ASSIGN_H

#include <stdint.h>

#include "devices/pci.h"
#include "firmware/boot.h"

/*
 * The PC's windows: MMIO from the top of RAM (3 GiB) up to the ECAM window
 * (configuration space as MMIO, 1 MiB per bus), which sits where many PC
 * chipsets and QEMU's microvm put it. The ECAM is decoded and announced
 * (ACPI MCFG) only with --acpi on; the window is the same either way.
 * Above it, up to the IOAPIC, nothing is mapped.
 *
 * It covers bus 0 only, the one bus there is. Linux takes the MCFG's last
 * bus as the last one worth probing (pcibios_last_bus) and, at boot, reads
 * the vendor ID of 32 devices on every bus up to it looking for a peer
 * host bridge: announcing buses 0-255, as q35 does, cost 8160 configuration
 * reads, 16320 exits, 0.7 s of a nested boot.
 */
#define PCI_ASSIGN_MMIO_BASE 0xC0000000ULL
#define PCI_ECAM_BASE        0xE0000000ULL
#define PCI_ECAM_BUSES       1
#define PCI_ECAM_SIZE        ((uint64_t)PCI_ECAM_BUSES << 20)
#define PCI_ASSIGN_MMIO_SIZE (PCI_ECAM_BASE - PCI_ASSIGN_MMIO_BASE)
#define PCI_ASSIGN_IO_BASE   0xC000u
#define PCI_ASSIGN_IO_SIZE   0x4000u

typedef struct PciAssignConfig {
    uint64_t mmio_base, mmio_size; /* below 4 GiB: 64-bit BARs go here too */
    uint32_t io_base, io_size;     /* inside the 64 KiB port space */
    /*
     * The GSI that INTx @pin (0 = INTA# .. 3 = INTD#) of device @slot raises;
     * NULL: the usual swizzle over GSIs 16..19, 16 + (slot + pin) % 4.
     */
    int (*gsi_of)(void *opaque, int slot, int pin);
    void *opaque;
} PciAssignConfig;

/*
 * Assign resources to every function plugged into @host (bus 0), largest
 * BARs first so alignment wastes little of the windows. Fills @irqs with one
 * entry per function whose INTERRUPT_PIN is non-zero.
 * Returns the number of @irqs entries, -ENOSPC if a window or @irqs is too
 * small, -EINVAL for a bad window or GSI.
 */
int pci_assign_resources(PciHost *host, const PciAssignConfig *cfg,
                         MpPciIrq *irqs, int max_irqs);

#endif
