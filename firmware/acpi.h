/*
 * The machine's ACPI tables (ACPI 6.4), what a PC's firmware would hand the
 * OS: how many CPUs, where the interrupt controllers are, the PCI host
 * bridge with its windows and interrupt routing, the ECAM window, how to
 * power off and reset.
 *
 *   RSDP  at BOOT_ACPI_ADDR (0xE0000), where Linux scans the BIOS area
 *   XSDT  -> FADT, MADT, MCFG
 *   FADT  hardware-reduced: sleep control/status and reset registers
 *         (devices/acpi-pm.h) instead of PM1 blocks and an SCI; -> DSDT
 *   MADT  one local APIC per vCPU (APIC ID = vCPU index), the IOAPIC, the
 *         LINT1 NMI
 *   MCFG  the ECAM window
 *   DSDT  \_SB.PCI0 (the host bridge: windows, _PRT), \_SB.COM1,
 *         \_SB.MRES (reserves the ECAM window), \_S5
 *
 * Everything lives in [BOOT_ACPI_ADDR, BOOT_ACPI_ADDR + BOOT_ACPI_MAX),
 * inside the range the e820 map reserves below 1 MiB.
 */
#ifndef MINIVMM_FIRMWARE_ACPI_H
#define MINIVMM_FIRMWARE_ACPI_H

#include <stdint.h>

#include "devices/memory.h"

#define ACPI_MAX_TABLES 6 /* RSDP, XSDT, FADT, MADT, MCFG, DSDT */

typedef struct AcpiConfig {
    /*
     * 1..254; APIC IDs 0..ncpus-1. 255 (0xFF) is the broadcast APIC ID and
     * the NMI entry's "all processors", and the IOAPIC ID must follow them.
     */
    int ncpus;
    uint8_t ioapic_id;    /* as the MP table has it: after the CPUs */
    uint32_t ioapic_addr; /* 0xFEC00000 */
    uint64_t ecam_base;   /* 1 MiB per bus, buses 0..ecam_last_bus */
    uint8_t ecam_last_bus;
    uint32_t mmio_base, mmio_size; /* the PCI windows (pci-assign.h) */
    uint16_t io_base;
    uint32_t io_size;
    /* The GSI of INTx @pin (0 = INTA#) of device @slot: the board's swizzle */
    int (*gsi_of)(void *opaque, int slot, int pin);
    void *opaque;
    uint16_t serial_port; /* COM1 */
    uint8_t serial_irq;
} AcpiConfig;

/* Where each table went, for --dump-acpi and the tests. */
typedef struct AcpiTable {
    char name[5]; /* the signature ("RSDP" for "RSD PTR ") */
    uint64_t addr;
    uint32_t len;
} AcpiTable;

/*
 * Write the tables into guest RAM; fill @tables (room for ACPI_MAX_TABLES)
 * and return their number. -EINVAL for a bad @cfg, -ENOMEM if RAM lacks
 * the area or the tables do not fit it.
 */
int acpi_build(GuestMemory *gm, const AcpiConfig *cfg, AcpiTable *tables);

#endif
