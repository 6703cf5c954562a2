/*
 * The ACPI registers of a hardware-reduced machine (ACPI 6.4, 4.8.3.7 and
 * 4.8.3.6): no PM1 blocks, no SCI, no GPEs; the FADT points at three one-byte
 * I/O ports instead, and firmware/acpi.c describes exactly these:
 *
 *   0x600  sleep control: SLP_TYP in bits 2-4, SLP_EN in bit 5. Writing
 *          SLP_EN with the DSDT's _S5 type (5) powers the machine off: it
 *          ends with status 0. Linux's `poweroff` does this.
 *   0x601  sleep status: WAK_STS in bit 7, write 1 to clear. The machine
 *          never sleeps, so it never wakes: reads are 0.
 *   0x602  reset: writing ACPI_RESET_VALUE resets the machine, which ends
 *          the run with status 0 (as QEMU's -no-reboot). Linux's `reboot`
 *          tries this first.
 *
 * Any other value is a rate-limited guest error and changes nothing.
 */
#ifndef MINIVMM_DEVICES_ACPI_PM_H
#define MINIVMM_DEVICES_ACPI_PM_H

#include "devices/address-space.h"
#include "devices/exit-ports.h"

#define ACPI_PM_PORT       0x600
#define ACPI_PM_SIZE       3
#define ACPI_SLEEP_CONTROL 0 /* offsets from ACPI_PM_PORT */
#define ACPI_SLEEP_STATUS  1
#define ACPI_RESET_REG     2
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK  0x1C
#define ACPI_SLP_EN        0x20
#define ACPI_WAK_STS       0x80
#define ACPI_S5_SLP_TYP    5 /* the _S5 package's value */
#define ACPI_RESET_VALUE   0x01

typedef struct AcpiPm {
    MachineExitFn *exit; /* the machine's exit callback, with status 0 */
    void *opaque;
} AcpiPm;

int acpi_pm_init(AcpiPm *pm, AddressSpace *as, MachineExitFn *exit,
                 void *opaque);

#endif
